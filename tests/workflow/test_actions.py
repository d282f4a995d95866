"""The actions' guarantees that no real tool triggers easily: every started hook ends once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from spruce.config import Config
from spruce.container import open_services
from spruce.hooks.base import Finding, HookContext, HookResult, Prepared
from spruce.workflow.actions import JobContext, run_hook
from spruce.workflow.definitions import HookSpec
from tests.workflow.runner import bare_context

pytestmark = pytest.mark.anyio


ODD = HookSpec(id="odd", phase="fast_hooks", tool="test", description="odd")


@dataclass(frozen=True)
class UnencodableHook:
    """A hook whose finding names a path JSON cannot carry (a lone surrogate)."""

    spec: HookSpec = ODD

    def prepare(self, ctx: HookContext) -> Prepared | str:
        return Prepared(inputs=("a.py",), identity=("odd",), cacheable=False)

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        finding = Finding(
            path="n\udcffme.py", line=1, column=1, code="x", message="x", severity="error", tool="t"
        )
        return HookResult(status="failed", findings=(finding,))


async def test_a_result_json_cannot_carry_still_ends_its_hook_as_an_error(tmp_path: Path) -> None:
    async with open_services(store_url="memory://") as services:
        job = JobContext(
            bus=services.bus,
            job_id="j",
            hooks=bare_context(tmp_path, ["a.py"]),
            plan={},
            cache=None,
        )
        result = await run_hook(job, "fast_hooks", UnencodableHook())
        await services.bus.flush()
        events = await services.log.read("j", after=0)
    assert result.status == "failed"
    assert [(e.event.value, e.step_id) for e in events] == [
        ("hook_started", "fast_hooks/odd"),
        ("hook_failed", "fast_hooks/odd"),
    ]
    assert events[1].data["status"] == "error"
    assert "JSON" in events[1].data["reason"]


@dataclass(frozen=True)
class ChunkedHook:
    """A file-local hook cut into one chunk per file; records the timeout each chunk gets."""

    timeouts: list[float]
    spec: HookSpec = ODD

    def prepare(self, ctx: HookContext) -> Prepared | str:
        return Prepared(inputs=("a.py", "b.py"), identity=("chunked",), chunk_bytes=1)

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        self.timeouts.append(timeout)
        return HookResult(status="passed", exit_code=0)


async def test_a_chunked_hook_s_timeout_counts_from_its_first_slot(tmp_path: Path) -> None:
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    hooks = bare_context(tmp_path, ["a.py", "b.py"])
    hooks = dataclasses.replace(hooks, config=Config(hook_timeout=5.0))
    hook = ChunkedHook(timeouts=[])
    async with open_services(store_url="memory://") as services:
        job = JobContext(
            bus=services.bus,
            job_id="j",
            hooks=hooks,
            plan={},
            cache=None,
            limiter=anyio.CapacityLimiter(2),
        )
        async with anyio.create_task_group() as tasks:
            for _ in range(2):  # both slots busy for longer than the hook's timeout
                tasks.start_soon(_hold_slot, job.limiter, 6.0)
            await anyio.sleep(0.1)
            result = await run_hook(job, "fast_hooks", hook)
    assert result.status == "passed"
    assert len(hook.timeouts) == 2 and min(hook.timeouts) > 4.0, hook.timeouts


async def _hold_slot(limiter: anyio.CapacityLimiter, seconds: float) -> None:
    async with limiter:
        await anyio.sleep(seconds)
