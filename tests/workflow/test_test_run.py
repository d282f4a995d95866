"""`SuiteRun` on its own: an early run's held events survive a cancel that lands while they are
being published, and each is published exactly once, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from spruce.events import WorkflowEvent as E
from spruce.hooks.base import HookContext, HookResult, Prepared, TestCase
from spruce.workflow.actions import JobContext, SuiteRun, run_test_workflow
from spruce.workflow.definitions import HOOKS_BY_ID, HookSpec
from tests.workflow.runner import bare_context

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class ThreeTests:
    """A test hook that reports three passing tests, without any process."""

    spec: HookSpec = HOOKS_BY_ID["pytest"]

    def prepare(self, ctx: HookContext) -> Prepared | str:
        return Prepared(inputs=("test_x.py",), identity=("three",), cacheable=False)

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        assert ctx.on_test_case is not None
        for index in range(3):
            case = TestCase(
                nodeid=f"test_x.py::test_{index}",
                outcome="passed",
                duration=0.0,
                path="test_x.py",
                line=index + 1,
                message=None,
            )
            await ctx.on_test_case(case, 3)
        return HookResult(status="passed", exit_code=0)


@dataclass(kw_only=True)
class StallingJob(JobContext):
    """A job whose publish records each event, and stalls (until cancelled) on one call."""

    stall_on: int = 0  # the 1-based publish call that stalls once; 0: none
    published: list[tuple[E, str | None]] = field(default_factory=list)
    calls: int = 0

    async def publish(self, event: E, step_id: str | None, data: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls == self.stall_on:
            await anyio.sleep_forever()
        self.published.append((event, step_id))


def _job(tmp_path: Path, *, stall_on: int) -> StallingJob:
    hooks = bare_context(tmp_path, ["test_x.py"])
    return StallingJob(
        bus=None,  # type: ignore[arg-type]  # this job publishes itself
        job_id="j1",
        hooks=hooks,
        plan={"tests": [ThreeTests()]},
        cache=None,
        stall_on=stall_on,
    )


EXPECTED = [
    (E.TEST_PHASE_STARTED, "tests"),
    (E.HOOK_STARTED, "tests/pytest"),
    (E.TEST_CASE_COMPLETED, "tests/test_x.py::test_0"),
    (E.TEST_CASE_COMPLETED, "tests/test_x.py::test_1"),
    (E.TEST_CASE_COMPLETED, "tests/test_x.py::test_2"),
    (E.HOOK_COMPLETED, "tests/pytest"),
]


async def _early_run_then_phase(job: StallingJob, *, cancel_after: float | None) -> None:
    """Run the suite early to its end, then its phase (cancelled after `cancel_after` s)."""
    async with anyio.create_task_group() as tasks:
        early = SuiteRun(job)
        tasks.start_soon(early.run)
        await early.finished.wait()
        with anyio.CancelScope() as scope:
            if cancel_after is not None:
                scope.deadline = anyio.current_time() + cancel_after
            await run_test_workflow(job, early)


async def test_held_events_are_published_in_order_at_the_phase_turn(tmp_path: Path) -> None:
    job = _job(tmp_path, stall_on=0)
    with anyio.fail_after(10):
        await _early_run_then_phase(job, cancel_after=None)
    assert job.published == [*EXPECTED, (E.TEST_PHASE_COMPLETED, "tests")]


async def test_a_cancel_while_publishing_held_events_loses_none(tmp_path: Path) -> None:
    job = _job(tmp_path, stall_on=3)  # stalls on the first test case, in the middle of go_live
    with anyio.fail_after(10):
        await _early_run_then_phase(job, cancel_after=0.2)
    assert job.published == [*EXPECTED, (E.TEST_PHASE_FAILED, "tests")]
