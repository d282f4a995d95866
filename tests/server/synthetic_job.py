"""A writer process for cross-process tests: publishes one standard_quality-shaped job (per
docs/events.md) into a store URL, pausing between events like a real run.

Usage: python synthetic_job.py STORE_URL JOB_ID [--cases N] [--pause SECONDS] [--fail]
"""

from __future__ import annotations

import argparse
import asyncio

from spruce.bus import WorkflowEventBus
from spruce.container import open_services
from spruce.events import WorkflowEvent as E

FINDING = {
    "path": "src/app.py", "line": 3, "column": 8, "code": "F401",
    "message": "`os` imported but unused", "severity": "error", "tool": "ruff",
}  # fmt: skip


async def _hook(bus: WorkflowEventBus, job: str, phase: str, hook: str, findings: int) -> None:
    step = f"{phase}/{hook}"
    await bus.publish(E.HOOK_STARTED, job_id=job, step_id=step, data={"hook": hook, "phase": phase})
    status = "failed" if findings else "passed"
    await bus.publish(
        E.HOOK_FAILED if findings else E.HOOK_COMPLETED,
        job_id=job,
        step_id=step,
        data={
            "hook": hook, "phase": phase, "status": status, "duration": 0.01,
            "exit_code": 1 if findings else 0, "findings": findings, "cached": False,
            "reason": None, "details": [FINDING] * findings, "details_truncated": False,
        },
    )  # fmt: skip


async def publish(url: str, job: str, cases: int, pause: float, fail: bool) -> None:
    async with open_services(store_url=url) as services:
        bus = services.bus

        async def emit(kind: E, step: str | None, **data: object) -> None:
            await bus.publish(kind, job_id=job, step_id=step, data=data)
            await bus.flush()
            await asyncio.sleep(pause)

        await emit(E.WORKFLOW_SESSION_INITIALIZING, None, workflow="standard_quality",
                   project="/tmp/demo", spruce_version="0", options={})  # fmt: skip
        await emit(E.WORKFLOW_SESSION_READY, None, phases=["config", "fast_hooks", "tests"],
                   hooks=[{"id": "ruff-check", "phase": "fast_hooks"}], hooks_total=2)  # fmt: skip
        await emit(E.CONFIG_PHASE_STARTED, "config", phase="config")
        await emit(
            E.CONFIG_PHASE_COMPLETED, "config", phase="config", status="passed", duration=0.01
        )
        await emit(E.FAST_HOOKS_STARTED, "fast_hooks", phase="fast_hooks", hooks=["ruff-check"])
        await _hook(bus, job, "fast_hooks", "ruff-check", 1 if fail else 0)
        status = "failed" if fail else "passed"
        await emit(E.FAST_HOOKS_FAILED if fail else E.FAST_HOOKS_COMPLETED, "fast_hooks",
                   phase="fast_hooks", status=status, duration=0.02)  # fmt: skip
        await emit(E.TEST_PHASE_STARTED, "tests", phase="tests", total=cases)
        await emit(E.HOOK_STARTED, "tests/pytest", hook="pytest", phase="tests")
        for done in range(1, cases + 1):
            nodeid = f"tests/test_demo.py::test_{done}"
            await emit(E.TEST_CASE_COMPLETED, f"tests/{nodeid}", nodeid=nodeid, outcome="passed",
                       duration=0.001, path="tests/test_demo.py", line=done, message=None,
                       done=done, total=cases)  # fmt: skip
        await emit(E.HOOK_COMPLETED, "tests/pytest", hook="pytest", phase="tests",
                   status="passed", duration=0.05, exit_code=0, findings=0, cached=False,
                   reason=None, details=[], details_truncated=False)  # fmt: skip
        await emit(E.TEST_PHASE_COMPLETED, "tests", phase="tests", status="passed", duration=0.05,
                   passed=cases, failed=0, skipped=0, errors=0, total=cases)  # fmt: skip
        end = E.WORKFLOW_FAILED if fail else E.WORKFLOW_COMPLETED
        await emit(end, None, workflow="standard_quality", status=status, duration=0.1,
                   reason=None, exit_code=1 if fail else 0)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("job")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args()
    asyncio.run(publish(args.url, args.job, args.cases, args.pause, args.fail))


if __name__ == "__main__":
    main()
