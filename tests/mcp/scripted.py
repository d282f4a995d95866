"""A job runner that publishes a scripted job per docs/events.md, paced by the test.

It stands in for the workflow engine where a test needs exact control over what a job emits and
when (paging under load, progress while a job runs, a job that never ends by itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from spruce.bus import WorkflowEventBus
from spruce.errors import UsageError
from spruce.events import WorkflowEvent

HOOKS = ("ruff-check", "codespell")


@dataclass
class ScriptedRunner:
    """Starts scripted jobs: `hooks` hooks, `tests` test cases, `pause` seconds between events.

    With `hold`, the job waits before its end until `release()` (or `cancel`).
    """

    bus: WorkflowEventBus
    tests: int = 5
    pause: float = 0.0
    hold: bool = False
    findings: int = 1  # ruff-check's findings (kept in its end event)
    reported: int | None = None  # how many ruff-check reported, when more than were kept
    failing_tests: int = 0  # the first tests fail (at line 10 + their number)
    started: list[str] = field(default_factory=list)
    options: list[dict[str, bool]] = field(default_factory=list)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def start(
        self,
        project: str,
        *,
        workflow: str = "standard_quality",
        fix: bool = False,
        no_cache: bool = False,
        fail_fast: bool = False,
    ) -> str:
        if workflow != "standard_quality":
            raise UsageError(f"unknown workflow {workflow!r}")
        job_id = f"scripted-{next(self._ids)}"
        await self._publish(
            job_id,
            WorkflowEvent.WORKFLOW_SESSION_INITIALIZING,
            None,
            workflow=workflow,
            project=project,
            spruce_version="0",
            options={"fix": fix, "fail_fast": fail_fast, "no_cache": no_cache},
        )
        await self.bus.flush()
        self.started.append(job_id)
        self.options.append({"fix": fix, "no_cache": no_cache, "fail_fast": fail_fast})
        self._tasks[job_id] = asyncio.create_task(self._run(job_id, workflow))
        return job_id

    async def cancel(self, job_id: str) -> bool:
        task = self._tasks.get(job_id)
        if task is None or task.done():
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._publish(
            job_id,
            WorkflowEvent.WORKFLOW_CANCELLED,
            None,
            workflow="standard_quality",
            status="cancelled",
            duration=0.1,
            reason="cancelled on request",
            exit_code=130,
        )
        await self.bus.flush()
        return True

    def release(self) -> None:
        """Let held jobs end."""
        self._release.set()

    async def aclose(self) -> None:
        for job_id in list(self._tasks):
            await self.cancel(job_id)

    async def _publish(
        self, job_id: str, kind: WorkflowEvent, step_id: str | None, **data: Any
    ) -> None:
        await self.bus.publish(kind, job_id=job_id, step_id=step_id, data=data)
        if self.pause:
            await self.bus.flush()
            await asyncio.sleep(self.pause)

    async def _run(self, job_id: str, workflow: str) -> None:
        hooks = [{"id": hook, "phase": "fast_hooks"} for hook in HOOKS]
        hooks.append({"id": "pytest", "phase": "tests"})
        await self._publish(
            job_id,
            WorkflowEvent.WORKFLOW_SESSION_READY,
            None,
            phases=["config", "fast_hooks", "tests"],
            hooks=hooks,
            hooks_total=len(hooks),
        )
        await self._fast_hooks(job_id)
        await self._tests(job_id)
        if self.hold:
            await self._release.wait()
        await self._publish(
            job_id,
            WorkflowEvent.WORKFLOW_FAILED,
            None,
            workflow=workflow,
            status="failed",
            duration=1.0,
            reason=None,
            exit_code=1,
        )
        await self.bus.flush()

    async def _fast_hooks(self, job_id: str) -> None:
        phase = "fast_hooks"
        await self._publish(
            job_id, WorkflowEvent.FAST_HOOKS_STARTED, phase, phase=phase, hooks=list(HOOKS)
        )
        for hook in HOOKS:
            step = f"{phase}/{hook}"
            await self._publish(job_id, WorkflowEvent.HOOK_STARTED, step, hook=hook, phase=phase)
            finding = {
                "path": "src/x.py",
                "line": 2,
                "column": 8,
                "code": "F401",
                "message": "`os` imported but unused",
                "severity": "error",
                "tool": "ruff",
            }
            failed = hook == "ruff-check"
            details = [{**finding, "line": line} for line in range(2, self.findings + 2) if failed]
            await self._publish(
                job_id,
                WorkflowEvent.HOOK_FAILED if failed else WorkflowEvent.HOOK_COMPLETED,
                step,
                hook=hook,
                phase=phase,
                status="failed" if failed else "passed",
                duration=0.01,
                exit_code=1 if failed else 0,
                findings=self.reported or len(details),
                findings_total=self.reported or len(details),
                findings_truncated=(self.reported or 0) > len(details),
                cached=False,
                reason=None,
                details=details,
                details_truncated=False,
            )
        await self._publish(
            job_id,
            WorkflowEvent.FAST_HOOKS_FAILED,
            phase,
            phase=phase,
            status="failed",
            duration=0.02,
        )

    async def _tests(self, job_id: str) -> None:
        phase = "tests"
        await self._publish(
            job_id, WorkflowEvent.TEST_PHASE_STARTED, phase, phase=phase, total=self.tests
        )
        await self._publish(
            job_id, WorkflowEvent.HOOK_STARTED, "tests/pytest", hook="pytest", phase=phase
        )
        for done in range(1, self.tests + 1):
            nodeid = f"tests/test_x.py::test_{done}"
            failed = done <= self.failing_tests
            await self._publish(
                job_id,
                WorkflowEvent.TEST_CASE_COMPLETED,
                f"tests/{nodeid}",
                nodeid=nodeid,
                outcome="failed" if failed else "passed",
                duration=0.001,
                path="tests/test_x.py",
                line=10 + done if failed else done,
                message="assert 1 == 2" if failed else None,
                longrepr=f"tests/test_x.py:{10 + done}: in test_{done}\n  assert 1 == 2"
                if failed
                else None,
                when="call",
                done=done,
                total=self.tests,
            )
        counts = {
            "passed": self.tests - self.failing_tests,
            "failed": self.failing_tests,
            "skipped": 0,
            "errors": 0,
            "total": self.tests,
        }
        await self._publish(
            job_id,
            WorkflowEvent.HOOK_COMPLETED,
            "tests/pytest",
            hook="pytest",
            phase=phase,
            status="passed",
            duration=0.1,
            exit_code=0,
            findings=0,
            cached=False,
            reason=None,
            details=[],
            details_truncated=False,
        )
        await self._publish(
            job_id,
            WorkflowEvent.TEST_PHASE_COMPLETED,
            phase,
            phase=phase,
            status="passed",
            duration=0.1,
            **counts,
        )
