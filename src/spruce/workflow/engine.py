"""The workflow engine: runs one job's phases and publishes every step on the bus."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio

from spruce.bus import WorkflowEventBus
from spruce.events import WorkflowEvent
from spruce.workflow.definitions import WorkflowDefinition


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The switches of one run."""

    fix: bool = False
    no_cache: bool = False
    fail_fast: bool = False


@dataclass(frozen=True, kw_only=True)
class JobOutcome:
    """How a job ended: its workflow status and the CLI exit code it maps to."""

    status: str
    exit_code: int
    reason: str | None = None


class WorkflowEngine:
    """Runs one job; `run` always publishes exactly one end event."""

    def __init__(
        self,
        bus: WorkflowEventBus,
        *,
        job_id: str,
        project: Path,
        workflow: WorkflowDefinition,
        options: RunOptions,
    ) -> None:
        self.bus = bus
        self.job_id = job_id
        self.project = project
        self.workflow = workflow
        self.options = options
        self.first_event_stored = anyio.Event()

    async def run(self) -> JobOutcome:
        """Run the workflow to its end event (being built)."""
        await self.bus.publish(
            WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, job_id=self.job_id, data={}
        )
        await self.bus.flush()
        self.first_event_stored.set()
        reason = "the engine is being built"
        await self.bus.publish(
            WorkflowEvent.WORKFLOW_FAILED,
            job_id=self.job_id,
            data={
                "workflow": self.workflow.name,
                "status": "error",
                "duration": 0.0,
                "reason": reason,
                "exit_code": 1,
            },
        )
        return JobOutcome(status="error", exit_code=1, reason=reason)

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the job to stop; it ends with WORKFLOW_CANCELLED."""
