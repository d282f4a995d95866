"""A pytest plugin that reports each test's result as one JSON line on a pipe, while it runs.

It is loaded into the project's own interpreter (copied next to the job, not imported from
spruce), so it uses nothing but the standard library and pytest's hooks.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

ENV_FD = "SPRUCE_PYTEST_FD"
_MAX_MESSAGE = 2000
_out: IO[str] | None = None
_pending: dict[str, dict[str, Any]] = {}


def _emit(message: dict[str, Any]) -> None:
    if _out is not None:
        _out.write(json.dumps(message) + "\n")
        _out.flush()


def pytest_configure(config: Any) -> None:
    global _out
    fd = os.environ.get(ENV_FD)
    # xdist workers report to their controller, which reports here.
    if fd and _out is None and not hasattr(config, "workerinput"):
        _out = os.fdopen(int(fd), "w", encoding="utf-8")


def pytest_unconfigure(config: Any) -> None:
    global _out
    if _out is not None and not hasattr(config, "workerinput"):
        _out.close()
        _out = None


def pytest_collection_finish(session: Any) -> None:
    _emit({"kind": "collected", "total": len(session.items)})


def _message(report: Any) -> str | None:
    longrepr = report.longrepr
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        return str(longrepr[2])[:_MAX_MESSAGE]
    crash = getattr(longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else str(longrepr)
    return text[-_MAX_MESSAGE:]


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _emit(
            {
                "kind": "case",
                "nodeid": report.nodeid,
                "outcome": "error",
                "duration": 0.0,
                "path": report.nodeid.split("::")[0],
                "line": None,
                "message": _message(report),
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
        },
    )
    case["duration"] += float(getattr(report, "duration", 0.0))
    if report.failed:
        case["outcome"] = "failed" if report.when == "call" else "error"
        case["message"] = case["message"] or _message(report)
    elif report.skipped and case["outcome"] == "passed":
        case["outcome"] = "skipped"
        case["message"] = _message(report)
    if report.when == "teardown":
        _emit(_pending.pop(report.nodeid))
