"""Run the real engine on a copy of a sample project and collect the job's events."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

from spruce.container import open_services
from spruce.events import Event
from spruce.workflow.definitions import WORKFLOWS
from spruce.workflow.engine import JobOutcome, RunOptions, WorkflowEngine

PROJECTS: Final = Path(__file__).resolve().parent.parent / "resources" / "projects"


def copy_sample(name: str, into: Path) -> Path:
    """A private copy of a sample project (outside any git repo, so its files come from a walk)."""
    target = into / name
    shutil.copytree(PROJECTS / name, target)
    return target


async def run_workflow(
    project: Path,
    *,
    workflow: str = "standard_quality",
    cache_dir: Path | None = None,
    fix: bool = False,
    fail_fast: bool = False,
    no_cache: bool = False,
    job_id: str = "job1",
) -> tuple[JobOutcome, list[Event]]:
    """Run one job to its end on an in-memory log; return its outcome and every event."""
    async with open_services(store_url="memory://") as services:
        engine = WorkflowEngine(
            services.bus,
            job_id=job_id,
            project=project,
            workflow=WORKFLOWS[workflow],
            options=RunOptions(
                fix=fix,
                fail_fast=fail_fast,
                no_cache=no_cache or cache_dir is None,
                cache_dir=cache_dir,
            ),
        )
        outcome = await engine.run()
        events = await services.log.read(job_id, after=0, limit=100_000)
    return outcome, events


def hook_ends(events: list[Event]) -> dict[str, Event]:
    """The end event of each hook by step id (`phase/hook`)."""
    ends = ("hook_completed", "hook_failed", "hook_skipped")
    return {e.step_id or "": e for e in events if e.event.value in ends}
