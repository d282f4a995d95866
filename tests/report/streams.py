"""Event streams of whole jobs, to the letter of docs/events.md, for report and view tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from spruce.bus import WorkflowEventBus
from spruce.events import Event, WorkflowEvent

E = WorkflowEvent
T0: Final = 1767225600.0
PROJECT: Final = "/work/demo project"


@dataclass(frozen=True)
class Step:
    """One event of a script: what, where, its data, and seconds after the job started."""

    event: WorkflowEvent
    step_id: str | None
    data: dict[str, Any]
    at: float


def finding(
    path: str,
    line: int | None,
    column: int | None,
    code: str,
    message: str,
    *,
    severity: str = "error",
    tool: str,
) -> dict[str, Any]:
    """A finding object as hook end events carry it in `details`."""
    return {
        "path": path,
        "line": line,
        "column": column,
        "code": code,
        "message": message,
        "severity": severity,
        "tool": tool,
    }


def hook_end(
    event: WorkflowEvent,
    phase: str,
    hook: str,
    status: str,
    duration: float,
    at: float,
    *,
    exit_code: int | None = 0,
    details: list[dict[str, Any]] | None = None,
    cached: bool = False,
    reason: str | None = None,
) -> Step:
    """hook_completed / hook_failed / hook_skipped with every field docs/events.md names."""
    details = details or []
    return Step(
        event,
        f"{phase}/{hook}",
        {
            "hook": hook,
            "phase": phase,
            "status": status,
            "duration": duration,
            "exit_code": exit_code,
            "findings": len(details),
            "cached": cached,
            "reason": reason,
            "details": details,
            "details_truncated": False,
            "changed_files": [],
        },
        at,
    )


def hook_start(phase: str, hook: str, at: float) -> Step:
    return Step(E.HOOK_STARTED, f"{phase}/{hook}", {"hook": hook, "phase": phase}, at)


def case(
    nodeid: str, outcome: str, done: int, at: float, *, line: int | None, message: str | None = None
) -> Step:
    """test_case_completed for one test of four."""
    return Step(
        E.TEST_CASE_COMPLETED,
        f"tests/{nodeid}",
        {
            "nodeid": nodeid,
            "outcome": outcome,
            "duration": 0.01,
            "path": nodeid.split("::")[0],
            "line": line,
            "message": message,
            "done": done,
            "total": 4,
        },
        at,
    )


RUFF_F401: Final = finding("src/demo/app.py", 2, 8, "F401", "`os` imported but unused", tool="ruff")
RUFF_E741: Final = finding(
    "src/demo/app.py", 9, 5, "E741", "Ambiguous variable name: `l`", severity="warning", tool="ruff"
)
MYPY_ERR: Final = finding(
    "src/demo/app.py",
    12,
    12,
    "return-value",
    'Incompatible return value type (got "str", expected "int")',
    tool="mypy",
)
PYTEST_FAIL: Final = finding(
    "tests/test_app.py", 7, 1, "test-failed", "assert 1 == 2", tool="pytest"
)

# A standard_quality job on a project with a lint error, a type error and a failing test;
# code cleaning does not run (no --fix) and codespell is not installed.
FAILING_JOB: Final = (
    Step(
        E.WORKFLOW_SESSION_INITIALIZING,
        None,
        {
            "workflow": "standard_quality",
            "project": PROJECT,
            "spruce_version": "0.1.0",
            "options": {"fix": False, "fail_fast": False, "no_cache": False},
        },
        0.0,
    ),
    Step(
        E.WORKFLOW_SESSION_READY,
        None,
        {
            "phases": ["config", "fast_hooks", "code_cleaning", "comprehensive_hooks", "tests"],
            "hooks": [
                {"id": "trailing-whitespace", "phase": "fast_hooks"},
                {"id": "ruff-check", "phase": "fast_hooks"},
                {"id": "codespell", "phase": "fast_hooks"},
                {"id": "mypy", "phase": "comprehensive_hooks"},
                {"id": "bandit", "phase": "comprehensive_hooks"},
                {"id": "pytest", "phase": "tests"},
            ],
            "hooks_total": 6,
        },
        0.01,
    ),
    Step(E.CONFIG_PHASE_STARTED, "config", {"phase": "config"}, 0.01),
    Step(
        E.CONFIG_PHASE_COMPLETED,
        "config",
        {"phase": "config", "status": "passed", "duration": 0.01},
        0.02,
    ),
    Step(E.QUALITY_PHASE_STARTED, "quality", {"phase": "quality"}, 0.02),
    Step(
        E.FAST_HOOKS_STARTED,
        "fast_hooks",
        {"phase": "fast_hooks", "hooks": ["trailing-whitespace", "ruff-check", "codespell"]},
        0.02,
    ),
    Step(
        E.HOOK_STRATEGY_STARTED,
        "fast_hooks",
        {
            "strategy": "fast",
            "phase": "fast_hooks",
            "hooks": ["trailing-whitespace", "ruff-check", "codespell"],
        },
        0.02,
    ),
    hook_start("fast_hooks", "trailing-whitespace", 0.03),
    hook_start("fast_hooks", "ruff-check", 0.03),
    hook_end(
        E.HOOK_COMPLETED, "fast_hooks", "trailing-whitespace", "passed", 0.01, 0.04, exit_code=None
    ),
    hook_end(
        E.HOOK_SKIPPED,
        "fast_hooks",
        "codespell",
        "skipped",
        0.0,
        0.04,
        exit_code=None,
        reason="codespell is not installed: pip install codespell",
    ),
    hook_end(
        E.HOOK_FAILED,
        "fast_hooks",
        "ruff-check",
        "failed",
        0.05,
        0.08,
        exit_code=1,
        details=[RUFF_F401, RUFF_E741],
    ),
    Step(
        E.HOOK_STRATEGY_FAILED,
        "fast_hooks",
        {"strategy": "fast", "phase": "fast_hooks", "status": "failed", "duration": 0.06},
        0.08,
    ),
    Step(
        E.FAST_HOOKS_FAILED,
        "fast_hooks",
        {"phase": "fast_hooks", "status": "failed", "duration": 0.06},
        0.08,
    ),
    Step(
        E.CODE_CLEANING_COMPLETED,
        "code_cleaning",
        {
            "phase": "code_cleaning",
            "status": "skipped",
            "duration": 0.0,
            "reason": "code cleaning runs only with --fix",
            "changed_files": [],
        },
        0.08,
    ),
    Step(
        E.COMPREHENSIVE_HOOKS_STARTED,
        "comprehensive_hooks",
        {"phase": "comprehensive_hooks", "hooks": ["mypy", "bandit"]},
        0.08,
    ),
    hook_start("comprehensive_hooks", "mypy", 0.09),
    hook_start("comprehensive_hooks", "bandit", 0.09),
    hook_end(E.HOOK_COMPLETED, "comprehensive_hooks", "bandit", "passed", 0.0, 0.1, cached=True),
    hook_end(
        E.HOOK_FAILED,
        "comprehensive_hooks",
        "mypy",
        "failed",
        1.5,
        1.6,
        exit_code=1,
        details=[MYPY_ERR],
    ),
    Step(
        E.COMPREHENSIVE_HOOKS_FAILED,
        "comprehensive_hooks",
        {"phase": "comprehensive_hooks", "status": "failed", "duration": 1.52},
        1.6,
    ),
    Step(E.TEST_PHASE_STARTED, "tests", {"phase": "tests", "total": None}, 1.6),
    hook_start("tests", "pytest", 1.61),
    case("tests/test_app.py::test_add", "passed", 1, 2.0, line=3),
    case(
        "tests/test_app.py::test_broken",
        "failed",
        2,
        2.1,
        line=7,
        message="assert 1 == 2\nwhere 1 = add(0, 1)",
    ),
    case("tests/test_app.py::TestUi::test_skip", "skipped", 3, 2.2, line=12, message="no display"),
    case("tests/test_app.py::test_sub", "passed", 4, 2.3, line=15),
    hook_end(
        E.HOOK_FAILED, "tests", "pytest", "failed", 0.8, 2.4, exit_code=1, details=[PYTEST_FAIL]
    ),
    Step(
        E.TEST_PHASE_FAILED,
        "tests",
        {
            "phase": "tests",
            "status": "failed",
            "duration": 0.81,
            "passed": 2,
            "failed": 1,
            "skipped": 1,
            "errors": 0,
            "total": 4,
        },
        2.41,
    ),
    Step(
        E.QUALITY_PHASE_FAILED,
        "quality",
        {"phase": "quality", "status": "failed", "duration": 2.39},
        2.41,
    ),
    Step(
        E.WORKFLOW_FAILED,
        None,
        {
            "workflow": "standard_quality",
            "status": "failed",
            "duration": 2.42,
            "reason": None,
            "exit_code": 1,
        },
        2.42,
    ),
)


def events(script: tuple[Step, ...] = FAILING_JOB, *, job_id: str = "k3x9") -> list[Event]:
    """The script as the events a log would hold: seq 1, 2, 3… and timestamps from T0."""
    return [
        Event(
            event=step.event,
            job_id=job_id,
            seq=seq,
            step_id=step.step_id,
            timestamp=T0 + step.at,
            data=step.data,
        )
        for seq, step in enumerate(script, start=1)
    ]


def index_of(
    event: WorkflowEvent, step_id: str | None, script: tuple[Step, ...] = FAILING_JOB
) -> int:
    """Position of the first step with that event and step id."""
    return next(i for i, s in enumerate(script) if s.event is event and s.step_id == step_id)


async def publish(bus: WorkflowEventBus, script: tuple[Step, ...], *, job_id: str) -> None:
    """Publish the script on a real bus (which assigns seq and timestamps)."""
    for step in script:
        await bus.publish(step.event, job_id=job_id, step_id=step.step_id, data=step.data)
