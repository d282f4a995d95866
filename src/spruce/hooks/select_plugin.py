"""A pytest plugin for test selection: it leaves out the tests whose outcome spruce carries, and
records with coverage.py which blocks of the project's files each test that runs executes.

Loaded into the project's interpreter (copied next to the job), so it needs only the standard
library, pytest, and coverage (when coverage is missing it selects but does not record). Its
block functions are also what spruce uses to compare a file with its recorded blocks.

A block is the body of a function or method at module or class level (nested functions belong
to their enclosing body), keyed by a CRC of its qualified name and text; the module's top level,
with the bodies cut out, is the block "top". Lines run while modules are imported (outside any
test) are recorded per file as its import-time blocks.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import warnings
import zlib
from typing import Any

ENV_SETTINGS = "SPRUCE_SELECT"
_settings: dict[str, Any] = {}
_coverage: Any = None
_carried: list[str] = []


def digest(data: bytes) -> str:
    """The content hash spruce's file set uses (blake2b, 16 bytes)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_blocks(source: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """(CRC of the top level with bodies cut out, [(first line, last line, CRC) per body])."""
    tree = ast.parse(source)
    lines = source.decode("utf-8", "replace").splitlines()
    bodies: list[tuple[int, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.body:
                first, last = child.body[0].lineno, child.end_lineno or child.body[-1].lineno
                text = "\n".join([prefix + child.name, *lines[first - 1 : last]])
                bodies.append((first, last, zlib.crc32(text.encode())))
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.stmt):
                visit(child, prefix)

    visit(tree, "")
    cut: set[int] = set()
    for first, last, _ in bodies:
        cut.update(range(first, last + 1))
    top = "\n".join(line for number, line in enumerate(lines, 1) if number not in cut)
    return zlib.crc32(top.encode()), bodies


def _line_blocks(bodies: list[tuple[int, int, int]]) -> dict[int, int]:
    """Line number -> the CRC of the body it is in (lines of the top level are absent)."""
    return {line: crc for first, last, crc in bodies for line in range(first, last + 1)}


def pytest_configure(config: Any) -> None:
    global _coverage
    path = os.environ.get(ENV_SETTINGS)
    if not path or hasattr(config, "workerinput") or _settings:
        return
    with open(path, encoding="utf-8") as handle:
        _settings.update(json.load(handle))
    if not _settings.get("record") or config.pluginmanager.hasplugin("_cov"):
        return  # a run that pytest-cov measures keeps its own tracer
    try:
        # The C tracer on every version: sys.monitoring (3.12+) stops reporting a line once
        # seen, and each test must see its own lines.
        os.environ["COVERAGE_CORE"] = "ctrace"
        import coverage
    except ImportError:
        return
    if coverage.Coverage.current() is not None:
        return
    root = _settings["root"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _coverage = coverage.Coverage(
            data_file=None,
            config_file=False,
            source=[root],
            omit=[os.path.join(root, ".venv", "*"), "*/site-packages/*"],
        )
        _coverage.start()
    global _lines
    collector = getattr(_coverage, "_collector", None)
    if collector is None or not isinstance(getattr(collector, "data", None), dict):
        _coverage.stop()  # not the coverage this plugin knows: select, but do not record
        _coverage = None
        return
    _lines = _Lines(collector)


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    carry = set(_settings.get("carry") or ())
    if not carry:
        return
    kept: list[Any] = []
    left_out: list[Any] = []
    for item in items:
        (left_out if item.nodeid in carry else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
        _carried.extend(item.nodeid for item in left_out)


class _Lines:
    """Lines executed per label (a test's nodeid, "" for import time), taken straight from
    coverage's collector between tests: a dynamic context per test would cost a database write
    per test, more than many tests take to run. Line sets are interned (parametrized tests
    share them)."""

    def __init__(self, collector: Any) -> None:
        self.collector = collector
        self.label = ""
        self.by_label: dict[str, list[tuple[str, frozenset[int]]]] = {}
        self._interned: dict[frozenset[int], frozenset[int]] = {}

    def switch(self, label: str) -> None:
        """Give what ran since the last switch to the current label, then change labels."""
        taken = self.by_label.setdefault(self.label, [])
        for filename, live in list(self.collector.data.items()):
            if live:
                lines = frozenset(live)
                live.difference_update(lines)  # the tracer keeps writing into the same set
                taken.append((filename, self._interned.setdefault(lines, lines)))
        self.label = label


_lines: _Lines | None = None


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    if _lines is not None:  # before the test's setup: its fixtures count as its own
        _lines.switch(nodeid)


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    if _lines is not None:
        _lines.switch("")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    out = _settings.get("out")
    if not out:
        return
    report: dict[str, Any] = {"carried": _carried, "recorded": _lines is not None}
    if _coverage is not None and _lines is not None:
        _lines.switch("")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _coverage.stop()
        known = _settings.get("known") or {}
        report.update(_dependencies(_lines.by_label, _settings["root"], known))
    # Written whole, then renamed: spruce never reads half a report.
    with open(out + ".part", "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    os.replace(out + ".part", out)


def _dependencies(
    by_label: dict[str, list[tuple[str, frozenset[int]]]], root: str, known: dict[str, str]
) -> dict[str, Any]:
    """Per measured project file its digest, top-level CRC and import-time blocks; per test the
    blocks it executed, file by file. A file only imported, whose digest spruce already `known`s,
    is not parsed again (parsing a large module costs more than the tests that run)."""
    parsed: dict[str, tuple[str, dict[int, int]] | None] = {}
    files: dict[str, Any] = {}
    blocks_of: dict[tuple[str, frozenset[int]], set[int]] = {}
    by_tests = {filename for label, taken in by_label.items() if label for filename, _ in taken}

    def parse(filename: str) -> tuple[str, dict[int, int]] | None:
        if filename not in parsed:
            parsed[filename] = None
            relative = os.path.relpath(filename, root).replace(os.sep, "/")
            if relative.startswith("../") or not relative.endswith(".py"):
                return None
            try:
                with open(filename, "rb") as handle:
                    source = handle.read()
                if filename not in by_tests and known.get(relative) == digest(source):
                    return None  # spruce keeps what it knows of this file
                top, bodies = file_blocks(source)
            except (OSError, SyntaxError, ValueError):
                return None
            parsed[filename] = (relative, _line_blocks(bodies))
            files[relative] = {"digest": digest(source), "top": top, "import": []}
        return parsed[filename]

    def blocks(filename: str, lines: frozenset[int]) -> set[int]:
        key = (filename, lines)
        if key not in blocks_of:
            entry = parse(filename)
            in_body = entry[1] if entry else {}
            blocks_of[key] = {in_body[line] for line in lines if line in in_body}
        return blocks_of[key]

    tests: dict[str, dict[str, list[int]]] = {}
    for label, taken in by_label.items():
        per_file: dict[str, set[int]] = {}
        for filename, lines in taken:
            entry = parse(filename)
            if entry is not None:
                per_file.setdefault(entry[0], set()).update(blocks(filename, lines))
        if not label:
            for relative, executed in per_file.items():
                files[relative]["import"] = sorted(executed)
        else:
            tests[label] = {relative: sorted(executed) for relative, executed in per_file.items()}
    return {"files": files, "tests": tests}
