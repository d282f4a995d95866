"""WorkflowProgressMonitor on a real bus: exact plain lines, and the rich Live view's frames."""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import AsyncIterator, Callable
from typing import Final

import anyio
import pytest
from rich.console import Console

from spruce.bus import WorkflowEventBus
from spruce.events import Event
from spruce.store.memory import MemoryEventLog
from spruce.subscribers.progress import WorkflowProgressMonitor, plain_line
from tests.report.streams import FAILING_JOB, E, Step, index_of, publish

pytestmark = pytest.mark.anyio

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

PLAIN_LINES = [
    "config: passed in 0.01s",
    "fast_hooks/trailing-whitespace: passed in 0.01s",
    "fast_hooks/codespell: skipped (codespell is not installed: pip install codespell)",
    "fast_hooks/ruff-check: failed in 0.05s (2 findings)",
    "fast_hooks: failed in 0.06s",
    "code_cleaning: skipped (code cleaning runs only with --fix)",
    "comprehensive_hooks/bandit: passed in 0.00s (cached)",
    "comprehensive_hooks/mypy: failed in 1.50s (1 finding)",
    "comprehensive_hooks: failed in 1.52s",
    "FAILED tests/test_app.py::test_broken: assert 1 == 2",
    "tests/pytest: failed in 0.80s (1 finding)",
    "tests: failed in 0.81s (2 passed, 1 failed, 1 skipped, 0 errors)",
]


@pytest.fixture
async def bus() -> AsyncIterator[WorkflowEventBus]:
    async with WorkflowEventBus(MemoryEventLog()) as bus:
        yield bus


async def eventually(check: Callable[[], bool], *, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.01)


@pytest.mark.parametrize("force_terminal", [False, True])
async def test_plain_mode_writes_one_line_per_finished_unit_without_ansi(
    bus: WorkflowEventBus, force_terminal: bool
) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=force_terminal, width=100)
    monitor = WorkflowProgressMonitor(bus, console, live=False, job_id="k3x9")
    monitor.start_monitoring()
    await publish(bus, FAILING_JOB, job_id="k3x9")
    assert await monitor.wait_until_ended(timeout=5)
    monitor.stop_monitoring()
    assert out.getvalue() == "".join(line + "\n" for line in PLAIN_LINES)


async def test_plain_lines_appear_as_each_unit_finishes(bus: WorkflowEventBus) -> None:
    out = io.StringIO()
    monitor = WorkflowProgressMonitor(bus, Console(file=out), live=False, job_id="k3x9")
    monitor.start_monitoring()
    cut = index_of(E.HOOK_FAILED, "fast_hooks/ruff-check") + 1
    await publish(bus, FAILING_JOB[:cut], job_id="k3x9")
    await eventually(lambda: out.getvalue().count("\n") == 4)
    assert out.getvalue().splitlines() == PLAIN_LINES[:4]
    assert not await monitor.wait_until_ended(timeout=0.05)
    monitor.stop_monitoring()


async def test_other_jobs_are_ignored_and_without_a_job_id_the_first_job_is_followed(
    bus: WorkflowEventBus,
) -> None:
    named, first = io.StringIO(), io.StringIO()
    by_id = WorkflowProgressMonitor(bus, Console(file=named), live=False, job_id="k3x9")
    by_first = WorkflowProgressMonitor(bus, Console(file=first), live=False)
    by_id.start_monitoring()
    by_first.start_monitoring()
    other = [s for s in FAILING_JOB if s.event is not E.WORKFLOW_FAILED]
    await publish(bus, FAILING_JOB[:1], job_id="k3x9")
    await publish(bus, tuple(other), job_id="other")
    await publish(bus, FAILING_JOB[1:], job_id="k3x9")
    assert await by_id.wait_until_ended(timeout=5)
    assert await by_first.wait_until_ended(timeout=5)
    by_id.stop_monitoring()
    by_first.stop_monitoring()
    assert named.getvalue().splitlines() == PLAIN_LINES
    assert first.getvalue().splitlines() == PLAIN_LINES
    assert by_first.result()["job_id"] == "k3x9"


async def test_stopping_unsubscribes_so_later_events_show_nothing(bus: WorkflowEventBus) -> None:
    out = io.StringIO()
    monitor = WorkflowProgressMonitor(bus, Console(file=out), live=False)
    before = bus.stats().subscribers
    monitor.start_monitoring()
    assert bus.stats().subscribers == before + 1
    monitor.stop_monitoring()
    assert bus.stats().subscribers == before
    await publish(bus, FAILING_JOB, job_id="k3x9")
    await bus.flush()
    await anyio.sleep(0.05)
    assert out.getvalue() == ""


async def test_the_summary_lists_findings_and_ends_with_the_closing_line(
    bus: WorkflowEventBus,
) -> None:
    monitor = WorkflowProgressMonitor(bus, Console(file=io.StringIO()), live=False, job_id="k3x9")
    monitor.start_monitoring()
    await publish(bus, FAILING_JOB, job_id="k3x9")
    assert await monitor.wait_until_ended(timeout=5)
    monitor.stop_monitoring()
    assert monitor.summary() == (
        "fast_hooks/ruff-check: 2 findings\n"
        "  src/demo/app.py:2:8 F401 `os` imported but unused\n"
        "  src/demo/app.py:9:5 E741 Ambiguous variable name: `l`\n"
        "comprehensive_hooks/mypy: 1 finding\n"
        "  src/demo/app.py:12:12 return-value "
        'Incompatible return value type (got "str", expected "int")\n'
        "tests/pytest: 1 finding\n"
        "  tests/test_app.py:7:1 test-failed assert 1 == 2\n"
        "6 hooks: 2 passed, 3 failed, 1 skipped in 2.42s"
    )


def last_frame(out: io.StringIO) -> list[str]:
    """The lines of the most recent frame the Live view drew, without escape codes."""
    text = ANSI.sub("", out.getvalue())
    frame = text.rsplit("spruce standard_quality · job", 1)[-1]
    return [line.rstrip() for line in frame.splitlines()]


async def test_live_mode_spins_running_hooks_then_leaves_the_final_state(
    bus: WorkflowEventBus,
) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    monitor = WorkflowProgressMonitor(bus, console, live=True, job_id="k3x9")
    monitor.start_monitoring()
    try:
        cut = index_of(E.TEST_CASE_COMPLETED, "tests/tests/test_app.py::test_broken") + 1
        await publish(bus, FAILING_JOB[:cut], job_id="k3x9")
        await eventually(lambda: "2/4 tests" in ANSI.sub("", out.getvalue()))
        frame = last_frame(out)
        assert frame[0].endswith("k3x9 · running")
        pytest_row = next(line for line in frame if "pytest" in line)
        assert pytest_row[0] in SPINNER_FRAMES
        assert "running" in pytest_row
        ruff_row = next(line for line in frame if "ruff-check" in line)
        assert ruff_row.split() == ["✗", "ruff-check", "failed", "0.05s", "2", "findings"]
        tests_row = next(line for line in frame if line.startswith("tests "))
        assert tests_row.endswith(" 2/4 tests, 1 failed")
        assert "\x1b[" in out.getvalue()

        await publish(bus, FAILING_JOB[cut:], job_id="k3x9")
        assert await monitor.wait_until_ended(timeout=5)
    finally:
        monitor.stop_monitoring()
    frame = last_frame(out)
    assert frame[0].endswith("k3x9 · failed")
    rows = [line.split() for line in frame[1:] if line.strip()]
    assert rows[:3] == [
        ["✓", "config", "passed", "0.01s"],
        ["✗", "fast_hooks", "failed", "0.06s"],
        ["✓", "trailing-whitespace", "passed", "0.01s"],
    ]
    assert ["✓", "bandit", "passed", "0.00s", "cached"] in rows
    assert ["-", "code_cleaning", "skipped", "0.00s"] in rows
    assert rows[-1][0] == "tests" and rows[-1][-4:] == ["4/4", "tests,", "1", "failed"]
    assert not any(ch in "".join(frame) for ch in SPINNER_FRAMES)


def test_a_plain_phase_line_leaves_out_counts_that_are_all_zero() -> None:
    data = {
        "phase": "tests",
        "status": "skipped",
        "duration": 0.0,
        "reason": "no tests",
        "passed": 0,
        "failed": 0,
        "skipped": 0,
        "errors": 0,
        "total": 0,
    }
    event = Event(
        event=E.TEST_PHASE_COMPLETED, job_id="j", seq=1, step_id="tests", timestamp=0.0, data=data
    )
    assert plain_line(event) == "tests: skipped (no tests)"
    event = Event(
        event=E.TEST_PHASE_COMPLETED,
        job_id="j",
        seq=1,
        step_id="tests",
        timestamp=0.0,
        data={**data, "status": "passed", "passed": 3},
    )
    assert (
        plain_line(event)
        == "tests: passed in 0.00s (3 passed, 0 failed, 0 skipped, 0 errors; no tests)"
    )


SELECTION: Final = {
    "selected": 4,
    "carried": 6,
    "carried_from": "j1",
    "selection": "4 of 10 tests run; 6 carried from job j1",
}


def _selected(script: tuple[Step, ...]) -> tuple[Step, ...]:
    """The script with the tests phase's end saying test selection carried outcomes."""
    return tuple(
        dataclasses.replace(step, data={**step.data, **SELECTION})
        if step.event is E.TEST_PHASE_FAILED
        else step
        for step in script
    )


async def test_what_ran_and_what_was_carried_is_said_in_each_mode(bus: WorkflowEventBus) -> None:
    out = io.StringIO()
    monitor = WorkflowProgressMonitor(bus, Console(file=out), live=False, job_id="k3x9")
    monitor.start_monitoring()
    await publish(bus, _selected(FAILING_JOB), job_id="k3x9")
    assert await monitor.wait_until_ended(timeout=5)
    monitor.stop_monitoring()
    assert (
        "tests: failed in 0.81s (2 passed, 1 failed, 1 skipped, 0 errors; "
        "4 of 10 tests run; 6 carried from job j1)"
    ) in out.getvalue().splitlines()
    assert monitor.summary().splitlines()[-2:] == [
        "4 of 10 tests run; 6 carried from job j1",
        "6 hooks: 2 passed, 3 failed, 1 skipped in 2.42s",
    ]


def test_the_plain_tests_line_says_why_the_whole_suite_ran() -> None:
    data = {
        "phase": "tests",
        "status": "passed",
        "duration": 0.5,
        "passed": 4,
        "failed": 0,
        "skipped": 0,
        "errors": 0,
        "total": 4,
        "selected": 4,
        "carried": 0,
        "selection": "all 4 tests run: no test map yet",
    }
    event = Event(
        event=E.TEST_PHASE_COMPLETED, job_id="j", seq=1, step_id="tests", timestamp=0.0, data=data
    )
    assert plain_line(event) == (
        "tests: passed in 0.50s (4 passed, 0 failed, 0 skipped, 0 errors; "
        "all 4 tests run: no test map yet)"
    )
