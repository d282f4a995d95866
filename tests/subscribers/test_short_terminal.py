"""The live view on a short terminal keeps its running rows; piped output says which hooks are
slow; reasons and queued time are said readably."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator

import anyio
import pytest
from rich.console import Console

from spruce.bus import WorkflowEventBus
from spruce.store.memory import MemoryEventLog
from spruce.subscribers.fit import Row, fit_rows
from spruce.subscribers.progress import WorkflowProgressMonitor
from tests.report.streams import FAILING_JOB, E, Step, hook_end, hook_start, publish

pytestmark = pytest.mark.anyio
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
FAST = [f"check-{n}" for n in range(10)]
SLOW = ["mypy", "bandit", "vulture"]


def _busy_job() -> tuple[Step, ...]:
    """Ten finished fast hooks, then three comprehensive hooks still running."""
    steps = [FAILING_JOB[0], Step(E.FAST_HOOKS_STARTED, "fast_hooks", {"phase": "fast_hooks"}, 0.1)]
    for hook in FAST:
        steps += [
            hook_start("fast_hooks", hook, 0.1),
            hook_end(E.HOOK_COMPLETED, "fast_hooks", hook, "passed", 0.01, 0.2),
        ]
    steps.append(
        Step(
            E.FAST_HOOKS_COMPLETED,
            "fast_hooks",
            {"phase": "fast_hooks", "status": "passed", "duration": 0.2},
            0.3,
        )
    )
    steps.append(
        Step(
            E.COMPREHENSIVE_HOOKS_STARTED,
            "comprehensive_hooks",
            {"phase": "comprehensive_hooks"},
            0.3,
        )
    )
    steps += [hook_start("comprehensive_hooks", hook, 0.4) for hook in SLOW]
    return tuple(steps)


@pytest.fixture
async def bus() -> AsyncIterator[WorkflowEventBus]:
    async with WorkflowEventBus(MemoryEventLog()) as bus:
        yield bus


async def test_a_14_line_terminal_shows_every_running_hook(bus: WorkflowEventBus) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=14)
    monitor = WorkflowProgressMonitor(bus, console, live=True, job_id="k3x9")
    monitor.start_monitoring()
    try:
        await publish(bus, _busy_job(), job_id="k3x9")
        with anyio.fail_after(5):
            while "vulture" not in ANSI.sub("", out.getvalue()):
                await anyio.sleep(0.02)
        await anyio.sleep(0.3)  # a few more frames
        frame = ANSI.sub("", out.getvalue()).rsplit("spruce standard_quality · job", 1)[-1]
    finally:
        monitor.stop_monitoring()
    lines = [line.rstrip() for line in frame.splitlines() if line.strip()]
    assert len(lines) <= 13, lines
    running = [line for line in lines if " running" in line and line.split()[1] in SLOW]
    assert len(running) == 3, lines
    assert "..." not in frame
    phase = next(line for line in lines if line.split()[1:2] == ["fast_hooks"])
    assert "more hooks" in phase


def test_fitting_drops_finished_hooks_before_phases_and_never_running_ones() -> None:
    rows = [Row("fast_hooks", None, "failed")]
    rows += [Row("fast_hooks", f"h{n}", "passed") for n in range(5)]
    rows += [Row("fast_hooks", "ruff-check", "failed")]
    rows += [Row("comprehensive_hooks", None, "running")]
    rows += [Row("comprehensive_hooks", hook, "running") for hook in SLOW]
    assert fit_rows(rows, 20) == rows
    six = fit_rows(list(rows), 6)
    assert [(row.phase, row.hook) for row in six] == [
        ("fast_hooks", None),
        ("fast_hooks", "ruff-check"),
        ("comprehensive_hooks", None),
        *(("comprehensive_hooks", hook) for hook in SLOW),
    ]
    assert six[0].hidden == 5
    three = fit_rows(list(rows), 3)
    assert [row.hook for row in three] == SLOW


async def test_piped_output_says_which_hook_is_still_running(bus: WorkflowEventBus) -> None:
    out = io.StringIO()
    monitor = WorkflowProgressMonitor(
        bus, Console(file=out), live=False, job_id="k3x9", slow_after=0.3
    )
    monitor.start_monitoring()
    try:
        steps = (
            FAILING_JOB[0],
            hook_start("comprehensive_hooks", "mypy", 0.1),
            hook_start("fast_hooks", "ruff-check", 0.1),
            hook_end(E.HOOK_COMPLETED, "fast_hooks", "ruff-check", "passed", 0.01, 0.2),
        )
        await publish(bus, steps, job_id="k3x9")
        with anyio.fail_after(5):
            while "mypy" not in out.getvalue():
                await anyio.sleep(0.02)
        await anyio.sleep(0.4)
    finally:
        monitor.stop_monitoring()
    assert out.getvalue().splitlines() == [
        "fast_hooks/ruff-check: passed in 0.01s",
        "comprehensive_hooks/mypy: started, still running after 0.3s",
    ]


async def test_an_error_reason_and_the_time_queued_are_said_readably(
    bus: WorkflowEventBus,
) -> None:
    out = io.StringIO()
    monitor = WorkflowProgressMonitor(bus, Console(file=out), live=False, job_id="k3x9")
    monitor.start_monitoring()
    reason = '{"errors": [{"filename": "src/x.py", "reason": "syntax error while parsing AST"}]}'
    end = hook_end(E.HOOK_FAILED, "comprehensive_hooks", "bandit", "error", 0.5, 0.6, reason=reason)
    end.data["queued"] = 1.25
    try:
        await publish(bus, (FAILING_JOB[0], end), job_id="k3x9")
        with anyio.fail_after(5):
            while "bandit" not in out.getvalue():
                await anyio.sleep(0.02)
    finally:
        monitor.stop_monitoring()
    assert out.getvalue() == (
        "comprehensive_hooks/bandit: error in 0.50s "
        "(queued 1.25s; src/x.py: syntax error while parsing AST)\n"
    )


async def test_hooks_waiting_for_a_slot_show_as_queued(bus: WorkflowEventBus) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=40)
    monitor = WorkflowProgressMonitor(bus, console, live=True, job_id="k3x9")
    monitor.start_monitoring()
    planned = [{"id": hook, "phase": "comprehensive_hooks"} for hook in SLOW]
    steps = (
        FAILING_JOB[0],
        Step(E.WORKFLOW_SESSION_READY, None, {"hooks": planned, "hooks_total": 3}, 0.1),
        Step(
            E.COMPREHENSIVE_HOOKS_STARTED,
            "comprehensive_hooks",
            {"phase": "comprehensive_hooks"},
            0.2,
        ),
        hook_start("comprehensive_hooks", "mypy", 0.3),
    )
    try:
        await publish(bus, steps, job_id="k3x9")
        with anyio.fail_after(5):
            while "vulture" not in ANSI.sub("", out.getvalue()):
                await anyio.sleep(0.02)
        await anyio.sleep(0.2)
        frame = ANSI.sub("", out.getvalue()).rsplit("spruce standard_quality · job", 1)[-1]
    finally:
        monitor.stop_monitoring()
    rows = {
        line.split()[1]: line.split()[2] for line in frame.splitlines() if len(line.split()) > 2
    }
    assert (rows["mypy"], rows["bandit"], rows["vulture"]) == ("running", "queued", "queued")
