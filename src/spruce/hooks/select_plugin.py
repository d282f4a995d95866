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
import sys
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


def _block_of(bodies: list[tuple[int, int, int]], line: int) -> int | None:
    for first, last, crc in bodies:
        if first <= line <= last:
            return crc
    return None


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
        if sys.version_info >= (3, 12):
            os.environ.setdefault("COVERAGE_CORE", "sysmon")
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


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    if _coverage is not None:  # before the test's setup: its fixtures count as its own
        _coverage.switch_context(nodeid)


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    if _coverage is not None:
        _coverage.switch_context("")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    out = _settings.get("out")
    if not out:
        return
    report: dict[str, Any] = {"carried": _carried, "recorded": _coverage is not None}
    if _coverage is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _coverage.stop()
            report.update(_dependencies(_coverage.get_data(), _settings["root"]))
    # Written whole, then renamed: spruce never reads half a report.
    with open(out + ".part", "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    os.replace(out + ".part", out)


def _dependencies(data: Any, root: str) -> dict[str, Any]:
    """Per measured project file its digest, top-level CRC and import-time blocks; per test the
    blocks it executed, file by file."""
    files: dict[str, Any] = {}
    tests: dict[str, dict[str, set[int]]] = {}
    for filename in data.measured_files():
        relative = os.path.relpath(filename, root).replace(os.sep, "/")
        if relative.startswith("../") or not relative.endswith(".py"):
            continue
        try:
            with open(filename, "rb") as handle:
                source = handle.read()
            top, bodies = file_blocks(source)
        except (OSError, SyntaxError, ValueError):
            continue
        at_import: set[int] = set()
        for line, contexts in data.contexts_by_lineno(filename).items():
            block = _block_of(bodies, line)
            for context in contexts:
                if not context:
                    if block is not None:
                        at_import.add(block)
                    continue
                executed = tests.setdefault(context, {}).setdefault(relative, set())
                if block is not None:
                    executed.add(block)
        files[relative] = {"digest": digest(source), "top": top, "import": sorted(at_import)}
    return {
        "files": files,
        "tests": {
            nodeid: {path: sorted(blocks) for path, blocks in per_file.items()}
            for nodeid, per_file in tests.items()
        },
    }
