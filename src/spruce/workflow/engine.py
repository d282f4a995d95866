"""The workflow engine: runs one job's phases and publishes every step on the bus.

Whatever happens (findings, a bad config, a timeout, a cancel, a bug), `run` publishes exactly
one end event: WORKFLOW_COMPLETED, WORKFLOW_FAILED or WORKFLOW_CANCELLED.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import anyio

from spruce import __version__
from spruce.bus import WorkflowEventBus
from spruce.errors import ConfigError
from spruce.events import WorkflowEvent as E
from spruce.orphans import runner_identity
from spruce.workflow.definitions import PhaseName, WorkflowDefinition
from spruce.workflow.scope import HookGate

_log: Final = logging.getLogger("spruce.workflow")
EXIT_PASSED: Final = 0
EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 2
EXIT_CANCELLED: Final = 130


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The switches of one run."""

    fix: bool = False
    no_cache: bool = False
    fail_fast: bool = False
    cache_dir: Path | None = None  # None: the user's cache directory
    all_tests: bool = False  # run the whole suite, no test selection
    gate: HookGate | None = None  # the hooks and files chosen (--hook/--skip/--files…)
    pre_commit: bool = False  # run the hooks of .pre-commit-config.yaml (--pre-commit-config)
    test_workers: int | Literal["auto"] | None = None  # --test-workers: over the project's setting


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
        self.project = project.resolve()
        self.workflow = workflow
        self.options = options
        self.first_event_stored = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._cancel_reason: str | None = None
        self._job: Any = None  # the JobContext once the config phase built it

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the job to stop: running tools are killed, it ends with WORKFLOW_CANCELLED."""
        self._cancel_reason = reason
        if self._job is not None:
            self._job.cancel_reason = reason
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> JobOutcome:
        """Run the workflow to its one end event and return how it ended."""
        started = time.monotonic()
        await self._publish(
            E.WORKFLOW_SESSION_INITIALIZING,
            None,
            {
                "workflow": self.workflow.name,
                "project": str(self.project),
                "spruce_version": __version__,
                "runner": runner_identity(),
                "options": {
                    "fix": self.options.fix,
                    "fail_fast": self.options.fail_fast,
                    "no_cache": self.options.no_cache,
                },
            },
        )
        await self.bus.flush()
        self.first_event_stored.set()
        outcome = JobOutcome(status="cancelled", exit_code=EXIT_CANCELLED, reason="cancelled")
        scratch = Path(tempfile.mkdtemp(prefix=f"spruce-{self.job_id}-"))
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._cancel_reason is None:
                    outcome = await self._run_phases(scratch)
            if scope.cancelled_caught:
                outcome = self._interrupted()
        except anyio.get_cancelled_exc_class():
            outcome = JobOutcome(
                status="cancelled",
                exit_code=EXIT_CANCELLED,
                reason=self._cancel_reason or "cancelled",
            )
            raise
        except Exception as exc:
            _log.exception("job %s failed inside spruce", self.job_id)
            while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]  # the phases run in a task group: name the error itself
            outcome = JobOutcome(
                status="error", exit_code=EXIT_FAILED, reason=f"internal error: {exc!r}"
            )
        finally:
            with anyio.CancelScope(shield=True):
                await self._end(outcome, time.monotonic() - started)
                shutil.rmtree(scratch, ignore_errors=True)
        return outcome

    def _interrupted(self) -> JobOutcome:
        if self._cancel_reason is not None:
            return JobOutcome(
                status="cancelled", exit_code=EXIT_CANCELLED, reason=self._cancel_reason
            )
        timeout = self._job.hooks.config.timeout if self._job is not None else 0.0
        return JobOutcome(
            status="failed", exit_code=EXIT_FAILED, reason=f"the job timed out after {timeout:g}s"
        )

    async def _end(self, outcome: JobOutcome, duration: float) -> None:
        event = {
            "passed": E.WORKFLOW_COMPLETED,
            "cancelled": E.WORKFLOW_CANCELLED,
        }.get(outcome.status, E.WORKFLOW_FAILED)
        await self._publish(
            event,
            None,
            {
                "workflow": self.workflow.name,
                "status": outcome.status,
                "duration": round(duration, 4),
                "reason": outcome.reason,
                "exit_code": outcome.exit_code,
            },
        )
        await self.bus.flush()

    async def _publish(self, event: E, step_id: str | None, data: dict[str, Any]) -> None:
        await self.bus.publish(event, job_id=self.job_id, step_id=step_id, data=data)

    async def _run_phases(self, scratch: Path) -> JobOutcome:
        from spruce.workflow import actions

        job = await self._config_phase(scratch)
        if isinstance(job, JobOutcome):
            return job
        self._job = job
        assert self._scope is not None
        self._scope.deadline = anyio.current_time() + job.hooks.config.timeout
        planned = [
            {"id": hook.spec.id, "phase": phase}
            for phase, hooks in job.plan.items()
            for hook in hooks
        ]
        await self._publish(
            E.WORKFLOW_SESSION_READY,
            None,
            {
                "phases": ["config", *self.workflow.phases],
                "hooks": planned,
                "hooks_total": len(planned),
            },
        )
        started = time.monotonic()
        await self._publish(E.QUALITY_PHASE_STARTED, "quality", {"phase": "quality"})
        statuses: list[str] = []
        status = "cancelled"
        phases = self.workflow.phases
        # From this phase on, nothing writes to the project (code cleaning with --fix does).
        cleans = self.options.fix and "code_cleaning" in phases
        read_only_from = phases.index("code_cleaning") + 1 if cleans else 0
        try:
            async with anyio.create_task_group() as early_tasks:
                early: actions.SuiteRun | None = None
                for index, phase in enumerate(phases):
                    if index == read_only_from and "tests" in phases[index + 1 :]:
                        early = actions.begin_tests_early(job, early_tasks)
                    if phase == "fast_hooks":
                        statuses.append(await actions.run_fast_hooks(job))
                    elif phase == "code_cleaning":
                        statuses.append(await actions.run_code_cleaning(job, fix=self.options.fix))
                    elif phase == "comprehensive_hooks":
                        statuses.append(await actions.run_comprehensive_hooks(job))
                    else:
                        statuses.append(await actions.run_test_workflow(job, early))
            failing = [s for s in statuses if s not in ("passed", "skipped")]
            status = "failed" if failing else "passed"
        except anyio.get_cancelled_exc_class():
            status = "cancelled" if self._cancel_reason else "timeout"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                if job.cache is not None:
                    await anyio.to_thread.run_sync(job.cache.prune)
                event = E.QUALITY_PHASE_COMPLETED if status == "passed" else E.QUALITY_PHASE_FAILED
                data = {
                    "phase": "quality",
                    "status": status,
                    "duration": round(time.monotonic() - started, 4),
                }
                await self._publish(event, "quality", data)
        if status == "passed":
            return JobOutcome(status="passed", exit_code=EXIT_PASSED)
        return JobOutcome(status="failed", exit_code=EXIT_FAILED, reason="checks failed")

    def _pre_commit_hooks(self, configured: bool) -> dict[PhaseName, list[Any]]:
        """The hooks of .pre-commit-config.yaml by phase, when asked for; they replace the
        built-in checks of those phases."""
        if not (configured or self.options.pre_commit):
            return {}
        from spruce.precommit import load_pre_commit

        return load_pre_commit(self.project)

    async def _config_phase(self, scratch: Path) -> Any:
        """Read the config, list the files, find the tools; a JobOutcome if that fails."""
        from msgspec.structs import replace as replace_struct

        from spruce.config import load_config
        from spruce.hooks.base import HookContext
        from spruce.hooks.registry import hooks_for
        from spruce.workflow.actions import JobContext
        from spruce.workflow.cache import ResultCache, default_cache_dir, project_state_dir
        from spruce.workflow.files import FileSet, discover_files
        from spruce.workflow.selection import selection_settings
        from spruce.workflow.toolenv import tool_envs

        started = time.monotonic()
        await self._publish(E.CONFIG_PHASE_STARTED, "config", {"phase": "config"})
        try:
            config = load_config(self.project)
            if self.options.test_workers is not None:
                config = replace_struct(config, test_workers=self.options.test_workers)
            imported = self._pre_commit_hooks(config.pre_commit)
            paths = await anyio.to_thread.run_sync(
                lambda: discover_files(self.project, exclude=config.exclude)
            )
            files = FileSet(self.project, paths)
            await anyio.to_thread.run_sync(files.preload)
            env, own = tool_envs(self.project)
        except ConfigError as exc:
            data = {
                "phase": "config",
                "status": "error",
                "duration": round(time.monotonic() - started, 4),
                "error": str(exc),
            }
            await self._publish(E.CONFIG_PHASE_FAILED, "config", data)
            return JobOutcome(status="error", exit_code=EXIT_CONFIG, reason=str(exc))
        plan: dict[PhaseName, list[Any]] = {}
        for phase in self.workflow.phases:
            if phase != "code_cleaning" or self.options.fix:
                plan[phase] = imported[phase] if phase in imported else hooks_for(phase, config)
        cache = None
        state = None
        if not self.options.no_cache:
            cache = ResultCache(self.options.cache_dir or default_cache_dir())
            state = project_state_dir(cache.directory, self.project)
        job = JobContext(
            bus=self.bus,
            job_id=self.job_id,
            hooks=HookContext(
                project=self.project,
                files=files,
                config=config,
                env=env,
                own=own,
                scratch=scratch,
                state=state,
                selection=selection_settings(
                    cache,
                    self.job_id,
                    all_tests=self.options.all_tests,
                    select_in_ci=config.select_tests,
                ),
            ),
            plan=plan,
            cache=cache,
            fail_fast=self.options.fail_fast,
            cancel_reason=self._cancel_reason,
            gate=self.options.gate,
        )
        data = {
            "phase": "config",
            "status": "passed",
            "duration": round(time.monotonic() - started, 4),
        }
        await self._publish(E.CONFIG_PHASE_COMPLETED, "config", data)
        return job
