"""A log of finished jobs with known durations and a planted flaky test, for the insights tests.

Six jobs of PROJECT, oldest first, then one job of another project and one still running:
- mypy runs 1, 1, 1, 2, 2, 2 s (p50 1.5, p95 2, trend 2.0), each after 0.5 s in the queue, and
  fails in job 4 (failure rate 1/6);
- ruff-check runs 0.1 … 0.5 s in jobs 1 to 5 and is answered from the cache in job 6;
- tests/test_a.py::test_flaky passes in jobs 1 and 2 and fails in job 3, all on inputs "A";
- tests/test_a.py::test_fixed fails on inputs "B" (job 4) and passes on "C" (job 5): not flaky;
- job 6's suite is a replay from the cache (its failing test_flaky is no new observation);
- tests/test_a.py::test_slow takes 3 s every time.
"""

from __future__ import annotations

from typing import Any, Final

from spruce.events import Event
from spruce.events import WorkflowEvent as E
from spruce.store import EventLog

PROJECT: Final = "/work/known-project"
OTHER: Final = "/work/other-project"
T0: Final = 1_767_225_600.0

_MYPY: Final = (1.0, 1.0, 1.0, 2.0, 2.0, 2.0)
_RUFF: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.001)
_INPUTS: Final = ("A", "A", "A", "B", "C", "A")


def _hook(phase: str, hook: str, duration: float, **extra: Any) -> tuple[E, str, dict[str, Any]]:
    status = extra.pop("status", "passed")
    kind = {"passed": E.HOOK_COMPLETED, "skipped": E.HOOK_SKIPPED}.get(status, E.HOOK_FAILED)
    data = {"hook": hook, "phase": phase, "status": status, "duration": duration}
    return kind, f"{phase}/{hook}", {"queued": 0.0, "cached": False, **data, **extra}


def _case(nodeid: str, outcome: str, duration: float) -> tuple[E, str, dict[str, Any]]:
    data = {"nodeid": nodeid, "outcome": outcome, "duration": duration}
    return E.TEST_CASE_COMPLETED, f"tests/{nodeid}", data


def known_job(
    index: int, *, job_id: str | None = None, project: str = PROJECT, ended: bool = True
) -> list[Event]:
    """The events of job `index` (0-based) of the known log, started in that order."""
    n = index + 1
    tests_cached = n == 6
    steps: list[tuple[E, str | None, dict[str, Any]]] = [
        (
            E.WORKFLOW_SESSION_INITIALIZING,
            None,
            {"workflow": "standard_quality", "project": project},
        ),
        (
            E.TEST_PHASE_STARTED,
            "tests",
            {"phase": "tests", "total": None, "inputs": _INPUTS[index]},
        ),
        (E.FAST_HOOKS_STARTED, "fast_hooks", {"phase": "fast_hooks"}),
        _hook("fast_hooks", "ruff-check", _RUFF[index], cached=n == 6),
        _hook("fast_hooks", "codespell", 0.0, status="skipped"),
        (
            E.FAST_HOOKS_COMPLETED,
            "fast_hooks",
            {"phase": "fast_hooks", "status": "passed", "duration": float(n)},
        ),
        (
            E.CODE_CLEANING_COMPLETED,
            "code_cleaning",
            {"phase": "code_cleaning", "status": "skipped", "duration": 0.0},
        ),
        _case("tests/test_a.py::test_slow", "passed", 3.0),
        _case("tests/test_a.py::test_flaky", "failed" if n in (3, 6) else "passed", 0.2),
        _case("tests/test_a.py::test_fixed", "failed" if n == 4 else "passed", 0.1),
        _hook(
            "comprehensive_hooks",
            "mypy",
            _MYPY[index],
            queued=0.5,
            status="failed" if n == 4 else "passed",
        ),
        _hook("tests", "pytest", 4.0, cached=tests_cached),
        (
            E.TEST_PHASE_COMPLETED,
            "tests",
            {"phase": "tests", "status": "passed", "duration": 4.0 + n},
        ),
    ]
    if ended:
        steps.append((E.WORKFLOW_COMPLETED, None, {"status": "passed", "duration": 9.0}))
    return [
        Event(
            event=kind,
            job_id=job_id or f"job{n}",
            seq=seq,
            step_id=step,
            timestamp=T0 + 100 * n + seq + (50 if job_id else 0),
            data=data,
        )
        for seq, (kind, step, data) in enumerate(steps, start=1)
    ]


async def fill_known_log(log: EventLog) -> None:
    """Append the known jobs: six of PROJECT, one of OTHER, one of PROJECT still running."""
    for index in range(6):
        await log.append(known_job(index))
    await log.append(known_job(5, job_id="other", project=OTHER))
    await log.append(known_job(5, job_id="running", ended=False))


EXPECTED_MYPY: Final = {
    "id": "mypy",
    "phase": "comprehensive_hooks",
    "runs": 6,
    "p50": 1.5,
    "p95": 2.0,
    "trend": 2.0,
    "queued_p50": 0.5,
    "cache_hit_rate": 0.0,
    "failure_rate": 0.1667,
}
EXPECTED_RUFF: Final = {
    "id": "ruff-check",
    "phase": "fast_hooks",
    "runs": 6,
    "p50": 0.3,  # of the five runs that executed
    "p95": 0.48,
    "trend": 3.0,  # 0.45 / 0.15
    "queued_p50": 0.0,
    "cache_hit_rate": 0.1667,
    "failure_rate": 0.0,
}
EXPECTED_FLAKY: Final = [
    {"nodeid": "tests/test_a.py::test_flaky", "passed": 2, "failed": 1, "last_job": "job3"}
]
