"""`SuiteRun` on its own: an early run publishes each event as it happens, in order, and ends its
hook and its phase exactly once even when cancelled mid-way."""

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
    """A test hook that reports three passing tests, without any process; after the first it
    waits until `release` is set."""

    release: anyio.Event
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
            await self.release.wait()
        return HookResult(status="passed", exit_code=0)


@dataclass(kw_only=True)
class RecordingJob(JobContext):
    """A job whose publish records each event."""

    published: list[tuple[E, str | None, dict[str, Any]]] = field(default_factory=list)

    async def publish(self, event: E, step_id: str | None, data: dict[str, Any]) -> None:
        self.published.append((event, step_id, data))

    def steps(self) -> list[tuple[E, str | None]]:
        return [(event, step) for event, step, _ in self.published]


def _job(tmp_path: Path, release: anyio.Event) -> RecordingJob:
    return RecordingJob(
        bus=None,  # type: ignore[arg-type]  # this job publishes itself
        job_id="j1",
        hooks=bare_context(tmp_path, ["test_x.py"]),
        plan={"tests": [ThreeTests(release)]},
        cache=None,
    )


FIRST_CASE = [
    (E.TEST_PHASE_STARTED, "tests"),
    (E.HOOK_STARTED, "tests/pytest"),
    (E.TEST_CASE_COMPLETED, "tests/test_x.py::test_0"),
]


async def _published_before_release(job: RecordingJob, early: SuiteRun) -> None:
    with anyio.fail_after(10):
        while len(job.published) < len(FIRST_CASE):
            await anyio.sleep(0.01)
    assert job.steps() == FIRST_CASE
    assert not early.finished.is_set()


async def test_an_early_suite_publishes_each_test_as_it_ends(tmp_path: Path) -> None:
    release = anyio.Event()
    job = _job(tmp_path, release)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            early = SuiteRun(job)
            tasks.start_soon(early.run_early)
            await _published_before_release(job, early)
            release.set()
            assert await run_test_workflow(job, early) == "passed"
    assert job.steps() == [
        *FIRST_CASE,
        (E.TEST_CASE_COMPLETED, "tests/test_x.py::test_1"),
        (E.TEST_CASE_COMPLETED, "tests/test_x.py::test_2"),
        (E.HOOK_COMPLETED, "tests/pytest"),
        (E.TEST_PHASE_COMPLETED, "tests"),
    ]
    assert job.published[0][2]["early"] is True
    assert job.published[-1][2]["passed"] == 3


async def test_a_cancel_mid_suite_ends_its_hook_and_phase_once(tmp_path: Path) -> None:
    job = _job(tmp_path, anyio.Event())  # never released: the suite hangs after one test
    job.cancel_reason = "stop"
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            early = SuiteRun(job)
            tasks.start_soon(early.run_early)
            await _published_before_release(job, early)
            tasks.cancel_scope.cancel()
    assert job.steps() == [
        *FIRST_CASE,
        (E.HOOK_SKIPPED, "tests/pytest"),
        (E.TEST_PHASE_FAILED, "tests"),
    ]
    assert job.published[-1][2]["status"] == "cancelled"
    assert job.published[-1][2]["passed"] == 1
    assert early.finished.is_set()
