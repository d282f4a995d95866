"""Run the real engine on a copy of a sample project and collect the job's events."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

import anyio
import pytest

from spruce.bus import WorkflowEventBus
from spruce.config import Config
from spruce.container import open_services
from spruce.events import Event
from spruce.hooks.base import HookContext
from spruce.workflow.definitions import WORKFLOWS
from spruce.workflow.engine import JobOutcome, RunOptions, WorkflowEngine
from spruce.workflow.files import FileSet
from spruce.workflow.toolenv import ToolEnv

PROJECTS: Final = Path(__file__).resolve().parent.parent / "resources" / "projects"


def copy_sample(name: str, into: Path) -> Path:
    """A private copy of a sample project (outside any git repo, so its files come from a walk)."""
    target = into / name
    shutil.copytree(PROJECTS / name, target)
    return target


def _engine(
    bus: WorkflowEventBus, project: Path, workflow: str, job_id: str, options: RunOptions
) -> WorkflowEngine:
    return WorkflowEngine(
        bus, job_id=job_id, project=project, workflow=WORKFLOWS[workflow], options=options
    )


async def run_workflow(
    project: Path,
    *,
    workflow: str = "standard_quality",
    cache_dir: Path | None = None,
    fix: bool = False,
    fail_fast: bool = False,
    no_cache: bool = False,
    all_tests: bool = False,
    job_id: str = "job1",
) -> tuple[JobOutcome, list[Event]]:
    """Run one job to its end on an in-memory log; return its outcome and every event."""
    options = RunOptions(
        fix=fix,
        fail_fast=fail_fast,
        no_cache=no_cache or cache_dir is None,
        all_tests=all_tests,
        cache_dir=cache_dir,
    )
    async with open_services(store_url="memory://") as services:
        engine = _engine(services.bus, project, workflow, job_id, options)
        outcome = await engine.run()
        events = await services.log.read(job_id, after=0, limit=100_000)
    return outcome, events


def hook_ends(events: list[Event]) -> dict[str, Event]:
    """The end event of each hook by step id (`phase/hook`)."""
    ends = ("hook_completed", "hook_failed", "hook_skipped")
    return {e.step_id or "": e for e in events if e.event.value in ends}


def alive(pid: int) -> bool:
    """Whether a process still runs (a zombie waiting for a reaper that is not us does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


async def wait_for_pids(path: Path) -> list[int]:
    """The pids the `sleepy` sample's test writes (its own and its child's) once it runs."""
    with anyio.fail_after(60):
        while not path.exists() or len(path.read_text().split()) < 2:
            await anyio.sleep(0.1)
    return [int(pid) for pid in path.read_text().split()]


def sleepy_sample(into: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A copy of the `sleepy` sample, and the file its test will write its pids to."""
    pids_file = into / "pids.txt"
    monkeypatch.setenv("SLEEPY_PIDS", str(pids_file))
    return copy_sample("sleepy", into), pids_file


async def cancel_once_sleeping(
    project: Path, *, workflow: str, job_id: str, pids_file: Path
) -> tuple[list[int], list[Event]]:
    """Run a `sleepy` job, cancel it once its test sleeps; the test's pids and the events."""
    async with open_services(store_url="memory://") as services:
        engine = _engine(services.bus, project, workflow, job_id, RunOptions(no_cache=True))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(engine.run)
            pids = await wait_for_pids(pids_file)
            engine.cancel("stop")
        return pids, await services.log.read(job_id, after=0)


def bare_context(
    project: Path,
    paths: list[str],
    *,
    versions: dict[str, str] | None = None,
    scratch: Path | None = None,
) -> HookContext:
    """A hook context on `paths` of `project`, default config, spruce's own interpreter
    (claiming `versions` of installed tools)."""
    env = ToolEnv(python=Path(sys.executable), versions=versions or {})
    return HookContext(
        project=project,
        files=FileSet(project, paths),
        config=Config(),
        env=env,
        own=env,
        scratch=scratch or project,
    )


OTHER: Final = (
    '"""Another module."""\n\n\ndef sub(left: int, right: int) -> int:\n    return left - right\n'
)
OTHER_TEST: Final = (
    "from other import sub\n\n\ndef test_sub() -> None:\n    assert sub(3, 1) == 2\n"
)


def two_module_project(into: Path) -> tuple[Path, Callable[[], None]]:
    """The clean sample plus a second module with its own test (3 tests in all), and an edit of
    that module's function body: after it, selection runs 1 test and carries 2."""
    project = copy_sample("clean", into)
    (project / "other.py").write_text(OTHER)
    (project / "tests" / "test_other.py").write_text(OTHER_TEST)

    def edit() -> None:
        (project / "other.py").write_text(OTHER.replace("left - right", "-(right - left)"))

    return project, edit
