"""JobRunner: runs workflows as background tasks of this process (for `spruce serve` and MCP)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from spruce.errors import JobExistsError, UsageError
from spruce.events import check_job_id
from spruce.workflow.process import usable_cpus

if TYPE_CHECKING:
    from spruce.container import Services
    from spruce.workflow.engine import WorkflowEngine
    from spruce.workflow.scope import HookGate

_ALPHABET: Final = string.ascii_lowercase + string.digits
_START_TIMEOUT: Final = 30.0
_CANCEL_TIMEOUT: Final = 30.0


class ProjectNotAllowedError(UsageError):
    """The project lies outside every root this runner was given."""


class RunnerBusyError(UsageError):
    """The runner already runs as many jobs as it may; try again when one ends."""


def new_job_id() -> str:
    """A short random job id (8 characters, about 41 bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def resolve_project(project: str | Path, roots: Sequence[Path]) -> Path:
    """The project's absolute path; UsageError if it is not a directory or not under a root."""
    try:
        path = Path(project).expanduser().resolve()
        if not path.is_dir():
            raise UsageError(f"project {str(project)[:200]!r} is not an existing directory")
    except (ValueError, OSError, RuntimeError) as exc:
        # A NUL byte, a name too long, an unknown ~user: the path cannot name a directory.
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"project path {str(project)[:200]!r} is not usable: {why}") from None
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        # Events carry the path as JSON text, which cannot hold undecodable bytes.
        raise UsageError(f"project path {str(path)!a} is not valid UTF-8") from None
    if roots and not any(path.is_relative_to(root.resolve()) for root in roots):
        allowed = ", ".join(str(root) for root in roots)
        raise ProjectNotAllowedError(
            f"project {str(path)!r} lies outside the allowed roots ({allowed})"
        )
    return path


class JobRunner:
    """Runs workflows as background tasks of this process (used by `spruce serve` and MCP)."""

    def __init__(
        self, services: Services, *, roots: Sequence[Path], max_running: int | None = None
    ) -> None:
        self._services = services
        # Each job runs the project's tools; more at once than cores only slows every one down.
        self.max_running = max_running or max(2, usable_cpus())
        self._roots = tuple(Path(root).resolve() for root in roots)
        self._engines: dict[str, WorkflowEngine] = {}
        self._tasks: dict[str, asyncio.Task[object]] = {}
        self._claimed: set[str] = set()
        self._log_watch: asyncio.Task[None] | None = None

    async def start(
        self,
        project: str,
        *,
        workflow: str = "standard_quality",
        job_id: str | None = None,
        fix: bool = False,
        no_cache: bool = False,
        fail_fast: bool = False,
        gate: HookGate | None = None,
    ) -> str:
        """Validate, start the job in the background, return its id once its first event is
        stored. UsageError (one clear sentence) for an unknown workflow, a project that does not
        exist or lies outside every root (ProjectNotAllowedError(UsageError) for that case),
        a taken job id."""
        from spruce.workflow.definitions import WORKFLOWS
        from spruce.workflow.engine import RunOptions, WorkflowEngine

        definition = WORKFLOWS.get(workflow)
        if definition is None:
            raise UsageError(f"unknown workflow {workflow!r}: choose one of {', '.join(WORKFLOWS)}")
        path = resolve_project(project, self._roots)
        if len(self.running()) >= self.max_running:
            raise RunnerBusyError(
                f"{self.max_running} jobs are already running here; start this one when one ends"
            )
        job_id = await self._claim(job_id)
        if self._log_watch is None:
            self._log_watch = asyncio.create_task(self._stop_all_when_log_fails())
        engine = WorkflowEngine(
            self._services.bus,
            job_id=job_id,
            project=path,
            workflow=definition,
            options=RunOptions(fix=fix, no_cache=no_cache, fail_fast=fail_fast, gate=gate),
        )
        self._engines[job_id] = engine
        task = asyncio.create_task(engine.run(), name=f"spruce-job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._forget(job_id))
        async with asyncio.timeout(_START_TIMEOUT):
            await engine.first_event_stored.wait()
        return job_id

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job this runner runs: it ends with WORKFLOW_CANCELLED, its processes are
        killed; True once that end event is stored, False if the job is not running here."""
        engine = self._engines.get(job_id)
        task = self._tasks.get(job_id)
        if engine is None or task is None:
            return False
        engine.cancel("cancelled on request")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CANCEL_TIMEOUT):
                await asyncio.shield(task)
        await self._services.bus.flush()
        return task.done()

    def running(self) -> list[str]:
        """Ids of the jobs this runner is running now."""
        return [job_id for job_id, task in self._tasks.items() if not task.done()]

    async def aclose(self) -> None:
        """Cancel every running job and wait for their end events."""
        if self._log_watch is not None:
            self._log_watch.cancel()
        await asyncio.gather(*(self.cancel(job_id) for job_id in self.running()))

    async def _stop_all_when_log_fails(self) -> None:
        """A log that refused events past its retry window stops the jobs running here: their
        events go to a spill file, and running on would only pile more up there."""
        await self._services.bus.log_unavailable.wait()
        for engine in list(self._engines.values()):
            engine.cancel("the event log is unavailable")

    async def _claim(self, job_id: str | None) -> str:
        """Reserve a free job id (checked against this runner and the event log)."""
        if job_id is not None:
            check_job_id(job_id)
        while True:
            candidate = job_id or new_job_id()
            taken = await self._services.log.get_job(candidate) is not None
            # Checked again after the await: another start() may have claimed it meanwhile.
            if not taken and candidate not in self._claimed:
                self._claimed.add(candidate)
                return candidate
            if job_id is not None:
                raise JobExistsError(job_id)

    def _forget(self, job_id: str) -> None:
        self._claimed.discard(job_id)
        self._engines.pop(job_id, None)
        self._tasks.pop(job_id, None)
