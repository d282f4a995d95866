"""The actions' guarantees that no real tool triggers easily: every started hook ends once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

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
