"""JobRunner: background jobs for the server and MCP, validated up front, cancellable."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from spruce.container import open_services
from spruce.errors import JobExistsError, UsageError
from spruce.jobs import JobRunner, ProjectNotAllowedError, RunnerBusyError, resolve_project
from tests.workflow.runner import copy_sample

pytestmark = pytest.mark.anyio


async def test_start_returns_once_the_first_event_is_stored(tmp_path: Path) -> None:
    project = copy_sample("format", tmp_path)
    async with open_services(store_url="memory://") as services:
        runner = JobRunner(services, roots=[tmp_path])
        job_id = await runner.start(str(project), workflow="fast", job_id="j1")
        assert job_id == "j1"
        first = await services.log.read("j1", after=0, limit=1)
        assert first[0].event.value == "workflow_session_initializing"
        with anyio.fail_after(60):
            async for event in services.bus.follow("j1"):
                last = event
        assert last.event.value == "workflow_failed"
        with anyio.fail_after(5):  # the task ends just after its end event is stored
            while runner.running():
                await anyio.sleep(0.01)


async def test_bad_requests_are_usage_errors(tmp_path: Path) -> None:
    project = copy_sample("clean", tmp_path / "root")
    async with open_services(store_url="memory://") as services:
        runner = JobRunner(services, roots=[tmp_path / "root"])
        with pytest.raises(UsageError, match="unknown workflow"):
            await runner.start(str(project), workflow="nightly")
        with pytest.raises(UsageError, match="not an existing directory"):
            await runner.start(str(tmp_path / "root" / "missing"))
        with pytest.raises(ProjectNotAllowedError):
            await runner.start(str(tmp_path))
        with pytest.raises(UsageError, match="invalid job id"):
            await runner.start(str(project), job_id="no spaces")
        await runner.start(str(project), workflow="fast", job_id="taken")
        with pytest.raises(JobExistsError):
            await runner.start(str(project), workflow="fast", job_id="taken")
        await runner.aclose()


@pytest.mark.slow
async def test_cancel_ends_the_job_with_workflow_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_sample("sleepy", tmp_path)
    monkeypatch.setenv("SLEEPY_PIDS", str(tmp_path / "pids.txt"))
    async with open_services(store_url="memory://") as services:
        runner = JobRunner(services, roots=[tmp_path])
        job_id = await runner.start(str(project), workflow="tests", no_cache=True)
        assert runner.running() == [job_id]
        await anyio.sleep(1)
        assert await runner.cancel(job_id) is True
        events = await services.log.read(job_id, after=0)
        assert events[-1].event.value == "workflow_cancelled"
        assert await runner.cancel(job_id) is False


async def test_a_project_path_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    project = tmp_path / os.fsdecode(b"proj\xff")
    project.mkdir()
    with pytest.raises(UsageError, match="not valid UTF-8"):
        resolve_project(project, ())


async def test_a_runner_at_its_limit_refuses_another_job_until_one_ends(tmp_path: Path) -> None:
    project = copy_sample("sleepy", tmp_path)
    async with open_services(store_url="memory://") as services:
        runner = JobRunner(services, roots=[tmp_path], max_running=1)
        await runner.start(str(project), workflow="tests", job_id="first")
        with pytest.raises(RunnerBusyError, match="1 jobs are already running"):
            await runner.start(str(project), workflow="tests", job_id="second")
        assert await runner.cancel("first")
        assert await runner.start(str(project), workflow="fast", job_id="third") == "third"
        await runner.aclose()
