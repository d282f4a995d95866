"""A hook that waits for a CPU slot: HOOK_STARTED comes when it gets one, and its end event says
how long it waited (`queued`) apart from how long it ran (`duration`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from spruce.container import open_services
from spruce.hooks.base import HookContext, HookResult, Prepared
from spruce.report.result import build_result
from spruce.workflow.actions import JobContext, run_hook
from spruce.workflow.definitions import HookSpec
from tests.workflow.runner import bare_context

pytestmark = pytest.mark.anyio

QUICK = HookSpec(id="quick", phase="fast_hooks", tool="test", description="quick")


@dataclass(frozen=True)
class QuickHook:
    """A hook that runs for a quarter of a second, by its own account."""

    chunk_bytes: int = 0
    spec: HookSpec = QUICK

    def prepare(self, ctx: HookContext) -> Prepared | str:
        return Prepared(inputs=("a.py", "b.py"), identity=("quick",), chunk_bytes=self.chunk_bytes)

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        return HookResult(status="passed", exit_code=0, duration=0.25)


@pytest.mark.parametrize("chunk_bytes", [0, 1], ids=["one process", "chunks"])
async def test_a_hook_starts_when_it_gets_a_slot_and_reports_its_wait(
    tmp_path: Path, chunk_bytes: int
) -> None:
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    release = anyio.Event()
    async with open_services(store_url="memory://") as services:
        job = JobContext(
            bus=services.bus,
            job_id="j",
            hooks=bare_context(tmp_path, ["a.py", "b.py"]),
            plan={},
            cache=None,
            limiter=anyio.CapacityLimiter(1),
        )
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                await job.limiter.acquire_on_behalf_of(release)  # the one slot is taken
                tasks.start_soon(run_hook, job, "fast_hooks", QuickHook(chunk_bytes=chunk_bytes))
                await anyio.sleep(0.3)
                await services.bus.flush()
                waiting = await services.log.read("j", after=0)
                job.limiter.release_on_behalf_of(release)
            await services.bus.flush()
            events = await services.log.read("j", after=0)
    assert waiting == []  # queued, not started: no event yet
    assert [e.event.value for e in events] == ["hook_started", "hook_completed"]
    started, end = events
    assert started.data["queued"] >= 0.3
    assert end.data["queued"] == started.data["queued"]
    assert end.data["duration"] < end.data["queued"]
    if not chunk_bytes:
        assert end.data["duration"] == 0.25  # the hook's own running time
    hook = build_result(events)["phases"][0]["hooks"][0]
    assert (hook["queued"], hook["duration"]) == (end.data["queued"], end.data["duration"])
