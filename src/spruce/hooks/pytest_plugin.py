"""A pytest plugin that reports each test's result as one JSON line on a pipe, while it runs.

It is loaded into the project's own interpreter (copied next to the job, not imported from
spruce), so it uses nothing but the standard library and pytest's hooks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any

import pytest

ENV_FD = "SPRUCE_PYTEST_FD"
# A shard's settings (JSON: index, count, seconds per test by file): this process runs only its
# part of what was collected, the same part whichever order the tests were collected in.
ENV_SHARD = "SPRUCE_PYTEST_SHARD"
_MAX_MESSAGE = 2000
_MAX_LONGREPR = 4096
_out: IO[str] | None = None
_pending: dict[str, dict[str, Any]] = {}
_root: Path | None = None
_xdist_counted = False
_shard: dict[str, Any] = {}
_ENVIRONMENTS = ("site-packages", "dist-packages")  # installed code, even inside the project


def _emit(message: dict[str, Any]) -> None:
    if _out is not None:
        _out.write(json.dumps(message) + "\n")
        _out.flush()


class _RecentAsts(dict[Any, Any]):
    """The parsed sources of the last two files pytest showed a failure in."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if key not in self and len(self) >= 2:
            del self[next(iter(self))]
        super().__setitem__(key, value)


def _share_parsed_sources() -> None:
    """pytest parses a failing test's whole file again for each failure it shows (twice with
    spruce's short traceback): 0.7 s a failure in idna's 25k-line test module, 22 s for 13
    failures. Its formatters share the parse of the last files instead (the text is the same)."""
    try:
        from _pytest._code.code import FormattedExcinfo
    except ImportError:
        return
    if "astcache" not in getattr(FormattedExcinfo, "__dataclass_fields__", {}):
        return  # not the pytest this knows: each failure parses its file, as pytest does
    if getattr(FormattedExcinfo.__init__, "spruce_shared", False):
        return
    shared = _RecentAsts()
    made = FormattedExcinfo.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.astcache = shared

    __init__.spruce_shared = True  # type: ignore[attr-defined]
    FormattedExcinfo.__init__ = __init__  # type: ignore[method-assign]


def pytest_configure(config: Any) -> None:
    global _out, _root
    _share_parsed_sources()
    _root = Path(str(config.rootpath)).resolve()
    fd = os.environ.get(ENV_FD)
    # xdist workers report to their controller, which reports here.
    if fd and _out is None and not hasattr(config, "workerinput"):
        _out = os.fdopen(int(fd), "w", encoding="utf-8")
    shard = os.environ.get(ENV_SHARD)
    if shard and not _shard:
        with open(shard, encoding="utf-8") as handle:
            _shard.update(json.load(handle))


def pytest_unconfigure(config: Any) -> None:
    global _out
    if _out is not None and not hasattr(config, "workerinput"):
        _out.close()
        _out = None


def shard_of(nodeids: list[str], count: int, costs: dict[str, float]) -> dict[str, int]:
    """Each test's shard: runs of the sorted nodeids (a file's tests stay together unless it
    must be split), balanced by the seconds a test of each file took last time."""
    known = [cost for cost in costs.values() if cost > 0]
    default = sum(known) / len(known) if known else 1.0
    ordered = sorted(nodeids)
    weights = [costs.get(nodeid.split("::")[0]) or default for nodeid in ordered]
    total = sum(weights) or 1.0
    shards: dict[str, int] = {}
    done = 0.0
    for nodeid, weight in zip(ordered, weights, strict=True):
        shards[nodeid] = min(count - 1, int((done + weight / 2) * count / total))
        done += weight
    return shards


@pytest.hookimpl(trylast=True)  # after test selection left out the tests it carries
def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if not _shard:
        return
    index, count = int(_shard["index"]), int(_shard["count"])
    shards = shard_of([item.nodeid for item in items], count, _shard.get("costs") or {})
    kept = [item for item in items if shards[item.nodeid] == index]
    dropped = [item for item in items if shards[item.nodeid] != index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_finish(session: Any) -> None:
    _emit({"kind": "collected", "total": len(session.items)})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Under pytest-xdist the controller collects nothing: the first worker's count is the
    total (every worker collects the whole suite)."""
    global _xdist_counted
    if not _xdist_counted:
        _xdist_counted = True
        _emit({"kind": "collected", "total": len(ids)})


def _in_project(path: str) -> str | None:
    """`path` relative to the project root, None when it lies outside or in an environment."""
    if _root is None:
        return None
    try:
        relative = Path(path).resolve().relative_to(_root)
    except (ValueError, OSError):
        return None
    if any(part in _ENVIRONMENTS or part.startswith(".") for part in relative.parts):
        return None
    return relative.as_posix()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Generator[None, Any, None]:
    """Note on a failing report where in the project it failed and its short traceback."""
    shown: list[str] = []
    _note_short_repr(item, shown)  # also without an exception yet: unittest's comes later
    try:
        outcome = yield
    finally:
        item.__dict__.pop("_repr_failure_py", None)
    report = outcome.get_result()
    excinfo = call.excinfo
    if excinfo is None or not report.failed:
        return
    try:  # the frames pytest shows: without its own and those hidden by __tracebackhide__
        entries = list(excinfo.traceback.filter(excinfo))
    except TypeError:  # pytest before 8 filters with no argument
        entries = list(excinfo.traceback.filter())
    for entry in reversed(entries):
        path = _in_project(str(entry.path))
        if path is not None:
            report.spruce_path = path
            report.spruce_line = entry.lineno + 1
            break
    try:  # what `--tb=short` prints for it (pytest's own, when spruce asked it for that)
        text = shown[0] if shown else str(item._repr_failure_py(excinfo, style="short"))
    except Exception:  # a private API that moved, or a repr that fails: pytest's own text
        text = str(report.longreprtext)
    report.spruce_longrepr = _tail(text, _MAX_LONGREPR)


def _note_short_repr(item: Any, shown: list[str]) -> None:
    """Keep the text of the short traceback pytest makes for its own report (before it adds the
    captured output): formatting a failure costs as much again (0.2 s and more in a long file)."""
    made = getattr(item, "_repr_failure_py", None)
    if made is None:
        return

    def remembered(excinfo: Any, style: Any = None, *args: Any, **kwargs: Any) -> Any:
        result = made(excinfo, style, *args, **kwargs)
        if style == "short" and not shown:
            shown.append(str(result))
        return result

    item._repr_failure_py = remembered


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _message(report: Any) -> str | None:
    longrepr = report.longrepr
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        return str(longrepr[2])[:_MAX_MESSAGE]
    crash = getattr(longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else str(longrepr)
    return text[-_MAX_MESSAGE:]


def _cause(text: str) -> str:
    """The cause of a collection error: pytest's last `E   ` line (the exception raised)."""
    causes = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    if causes:
        return causes[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "collection failed"


def _cause_line(text: str, path: str) -> int | None:
    """The line of `path` the collection error's traceback names last (`path:N: in …`)."""
    line = None
    for row in text.splitlines():
        head, sep, rest = row.strip().partition(":")
        if sep and head.endswith(path.rsplit("/", 1)[-1]):
            number = rest.partition(":")[0]
            if number.isdigit():
                line = int(number)
    return line


def pytest_collectreport(report: Any) -> None:
    if _shard and int(_shard["index"]) != 0:
        return  # every shard collects the whole suite: the first one reports its modules
    if report.skipped:  # a module skipped whole: pytest counts it among the skips
        _emit(
            {
                "kind": "case",
                "nodeid": report.nodeid,
                "outcome": "skipped",
                "duration": 0.0,
                "path": report.nodeid.split("::")[0],
                "line": None,
                "message": _message(report),
                "longrepr": None,
                "when": "collect",
            }
        )
    if not report.failed:
        return
    text = str(report.longrepr)
    path = report.nodeid.split("::")[0] or (report.fspath if hasattr(report, "fspath") else "")
    cause = _cause(text)
    _emit(
        {
            "kind": "case",
            "nodeid": report.nodeid,
            "outcome": "error",
            "duration": 0.0,
            "path": path,
            "line": _cause_line(text, path) if path else None,
            "message": f"collection error: {cause}"[:_MAX_MESSAGE],
            "longrepr": _tail(text, _MAX_LONGREPR),
            "when": "collect",
        }
    )


def pytest_runtest_logreport(report: Any) -> None:
    path, line, _ = report.location
    case = _pending.setdefault(
        report.nodeid,
        {
            "kind": "case",
            "nodeid": report.nodeid,
            "outcome": "passed",
            "duration": 0.0,
            "path": path,
            "line": None if line is None else line + 1,
            "message": None,
            "longrepr": None,
            "when": "call",
        },
    )
    case["duration"] += float(getattr(report, "duration", 0.0))
    xfail = hasattr(report, "wasxfail")
    if report.failed and case["outcome"] not in ("failed", "error"):
        case["outcome"] = "failed" if report.when == "call" else "error"
        case["when"] = report.when
        case["message"] = _message(report)
        case["longrepr"] = getattr(report, "spruce_longrepr", None) or _tail(
            str(report.longrepr), _MAX_LONGREPR
        )
        case["path"] = getattr(report, "spruce_path", None) or case["path"]
        case["line"] = getattr(report, "spruce_line", None) or case["line"]
    elif report.skipped and xfail and case["outcome"] == "passed":
        case["outcome"] = "xfailed"
        case["message"] = str(report.wasxfail or "expected to fail")[:_MAX_MESSAGE]
    elif report.skipped and case["outcome"] == "passed":
        case["outcome"] = "skipped"
        case["message"] = _message(report)
    elif report.passed and xfail and report.when == "call" and case["outcome"] == "passed":
        case["outcome"] = "xpassed"
        case["message"] = str(report.wasxfail or "expected to fail, passed")[:_MAX_MESSAGE]
    if report.when == "teardown":
        _emit(_pending.pop(report.nodeid))
