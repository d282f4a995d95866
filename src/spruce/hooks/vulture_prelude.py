"""Run in vulture's own process before vulture (its source is the vulture hook's prelude): keeps
what vulture's scan of each file found, the names it defines and the names it uses, in spruce's
state directory, so a run re-parses only the files that changed. Dead code is judged across all
files afterwards exactly as vulture judges it, so findings are unchanged.

One entry per file and set of options, holding the file's text digest: the directory stays the
size of the project. A file vulture could not read or parse is scanned again on every run (its
error is printed each time). Anything unlike the vulture this knows leaves vulture as it is.
"""

import contextlib
import hashlib
import os
import pickle
from typing import Any

STATE_ENV = "SPRUCE_TOOL_STATE"
_FOUND = (
    "defined_attrs",
    "defined_classes",
    "defined_funcs",
    "defined_imports",
    "defined_methods",
    "defined_props",
    "defined_vars",
    "unreachable_code",
)


def _keep_scans(directory: str) -> None:
    from vulture import core  # type: ignore[import-untyped]
    from vulture.version import __version__  # type: ignore[import-untyped]

    probe = core.Vulture()
    if not all(hasattr(probe, name) for name in (*_FOUND, "used_names", "ignore_names")):
        return
    scan_file = core.Vulture.scan

    def scan(self: Any, code: str, filename: Any = "") -> None:
        if self.verbose:
            scan_file(self, code, filename)  # vulture prints what it defines and uses
            return
        options = repr((__version__, self.ignore_names, self.ignore_decorators, str(filename)))
        path = os.path.join(directory, hashlib.sha256(options.encode()).hexdigest()[:32])
        text = hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()
        found = _read(path, text)
        if found is None:
            alone = core.Vulture(
                ignore_names=self.ignore_names, ignore_decorators=self.ignore_decorators
            )
            scan_file(alone, code, filename)
            found = {name: list(getattr(alone, name)) for name in _FOUND}
            found["used_names"] = set(alone.used_names)
            if alone.exit_code != core.ExitCode.NoDeadCode:
                self.exit_code = alone.exit_code
            else:
                _write(path, pickle.dumps((text, found)))
        for name in _FOUND:
            getattr(self, name).extend(found[name])
        self.used_names.update(found["used_names"])

    core.Vulture.scan = scan


def _read(path: str, text: str) -> Any:
    try:
        with open(path, "rb") as handle:
            kept_text, found = pickle.load(handle)
    except Exception:  # missing, damaged, or written by another vulture: scan again
        return None
    return found if kept_text == text else None


def _write(path: str, data: bytes) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".part", "wb") as handle:
            handle.write(data)
        os.replace(path + ".part", path)
    except OSError:
        pass  # not kept: only slower next time


if __name__ == "__main__" and os.environ.get(STATE_ENV):  # in vulture's process only
    with contextlib.suppress(ImportError, AttributeError, TypeError):
        _keep_scans(os.environ[STATE_ENV])
