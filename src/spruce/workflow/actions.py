"""The workflow's actions, one per phase: `run_fast_hooks`, `run_code_cleaning`,
`run_comprehensive_hooks`, `run_test_workflow`. Each publishes its phase's events and those of
its hooks, and returns the phase's status."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import msgspec

from spruce.bus import WorkflowEventBus, check_encodable
from spruce.events import Event
from spruce.events import WorkflowEvent as E
from spruce.hooks.base import (
    Hook,
    HookContext,
    HookResult,
    Prepared,
    TestCase,
    count_outcomes,
    keep_findings,
)
from spruce.hooks.batches import balanced_chunks, merge_results
from spruce.workflow.cache import CONFIG_FILES, ResultCache, cache_key
from spruce.workflow.definitions import IN_PROCESS, PhaseName
from spruce.workflow.process import usable_cpus
from spruce.workflow.scope import HookGate

_log: Final = logging.getLogger("spruce.workflow")

_PHASE_EVENTS: Final = {
    "fast_hooks": (E.FAST_HOOKS_STARTED, E.FAST_HOOKS_COMPLETED, E.FAST_HOOKS_FAILED),
    "code_cleaning": (E.CODE_CLEANING_STARTED, E.CODE_CLEANING_COMPLETED, E.CODE_CLEANING_FAILED),
    "comprehensive_hooks": (
        E.COMPREHENSIVE_HOOKS_STARTED,
        E.COMPREHENSIVE_HOOKS_COMPLETED,
        E.COMPREHENSIVE_HOOKS_FAILED,
    ),
    "tests": (E.TEST_PHASE_STARTED, E.TEST_PHASE_COMPLETED, E.TEST_PHASE_FAILED),
}
_STRATEGY: Final = {"fast_hooks": "fast", "comprehensive_hooks": "comprehensive"}
HELD_EVENTS_LIMIT: Final = 20_000  # events an early test run holds before it waits its turn
_EARLY_GRACE: Final = 30.0  # seconds a cancelled early test run has to publish its end
_PASSING: Final = frozenset({"passed", "fixed", "skipped"})
# Built-in tools, slowest first on typical projects (measured on idna and tomli).
_SLOWEST_FIRST: Final = ("mypy", "bandit", "vulture", "codespell", "ruff-format", "ruff-check")


@dataclass(kw_only=True)
class JobContext:
    """One job's shared state: where to publish, the hooks' context, the cache, the switches."""

    bus: WorkflowEventBus
    job_id: str
    hooks: HookContext
    plan: dict[PhaseName, list[Hook]]
    cache: ResultCache | None
    fail_fast: bool = False
    limiter: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(usable_cpus())
    )
    stop_reason: str | None = None  # set once --fail-fast stops scheduling
    cancel_reason: str | None = None  # set when the job is cancelled (else a cancel is a timeout)
    config_digests: tuple[tuple[str, str], ...] = ()
    gate: HookGate | None = None  # --hook/--skip and the file scope

    async def publish(self, event: E, step_id: str | None, data: dict[str, Any]) -> None:
        """Publish one event of this job."""
        await self.bus.publish(event, job_id=self.job_id, step_id=step_id, data=data)

    def config_fingerprint(self) -> tuple[tuple[str, str], ...]:
        """Digests of the config files at the project root (computed once per job)."""
        if not self.config_digests:
            files = self.hooks.files
            self.config_digests = tuple(
                (name, files.digest(name)) for name in CONFIG_FILES if (files.root / name).is_file()
            ) or (("", ""),)
        return self.config_digests


Publish = Callable[[E, str | None, dict[str, Any]], Awaitable[None]]


def hook_data(hook_id: str, phase: str, result: HookResult) -> dict[str, Any]:
    """The `data` of a hook's end event (docs/events.md)."""
    return {
        "hook": hook_id,
        "phase": phase,
        "status": result.status,
        "duration": round(result.duration, 4),
        "exit_code": result.exit_code,
        "findings": result.findings_total,
        "findings_total": result.findings_total,
        "findings_truncated": len(result.findings) < result.findings_total,
        "cached": result.cached,
        "reason": result.reason,
        "details": msgspec.to_builtins(result.findings),
        "details_truncated": len(result.findings) < result.findings_total,
        "changed_files": list(result.changed_files),
        "output_tail": result.output_tail,
    }


def _end_event(status: str) -> E:
    if status == "skipped":
        return E.HOOK_SKIPPED
    return E.HOOK_COMPLETED if status in _PASSING else E.HOOK_FAILED


async def run_hook(
    job: JobContext,
    phase: PhaseName,
    hook: Hook,
    *,
    ctx: HookContext | None = None,
    publish: Publish | None = None,
) -> HookResult:
    """Run one hook (or answer it from the cache) between HOOK_STARTED and its end event.

    `ctx` and `publish` default to the job's; the tests phase passes its own (a test sink, and
    a publisher that may hold its events until the phase's turn)."""
    ctx = ctx or job.hooks
    publish = publish or job.publish
    hook_id = hook.spec.id
    step = f"{phase}/{hook_id}"
    refused = job.stop_reason or (job.gate.refuse(hook_id) if job.gate else None)
    if refused is not None:
        result = HookResult(status="skipped", reason=refused)
        await publish(E.HOOK_SKIPPED, step, hook_data(hook_id, phase, result))
        return result
    try:
        prepared = hook.prepare(ctx)
        if job.gate is not None and not isinstance(prepared, str):
            prepared = job.gate.narrow(hook, prepared)
    except Exception as exc:  # a hook's own bug ends that hook, not the job or its neighbours
        result = HookResult(status="error", reason=f"internal error: {exc!r}")
        await publish(E.HOOK_FAILED, step, hook_data(hook_id, phase, result))
        _stop_if_failing_fast(job, hook_id, result)
        return result
    if isinstance(prepared, str):
        result = HookResult(status="skipped", reason=prepared)
        await publish(E.HOOK_SKIPPED, step, hook_data(hook_id, phase, result))
        return result
    if not prepared.inputs:
        result = HookResult(status="skipped", reason="no matching files")
        await publish(E.HOOK_SKIPPED, step, hook_data(hook_id, phase, result))
        return result
    await publish(E.HOOK_STARTED, step, {"hook": hook_id, "phase": phase})
    started = time.monotonic()
    result = HookResult(status="error", reason="did not finish")
    try:
        result = await _answer(job, ctx, hook, prepared)
    except anyio.get_cancelled_exc_class():
        reason = job.cancel_reason
        result = HookResult(
            status="skipped" if reason else "timeout",
            reason=reason or "the job timed out",
            duration=time.monotonic() - started,
        )
        raise
    except Exception as exc:  # a hook's own bug must not end the job without its events
        result = HookResult(status="error", reason=f"internal error: {exc!r}")
    finally:
        with anyio.CancelScope(shield=True):
            await _publish_end(publish, phase, hook_id, result)
    _stop_if_failing_fast(job, hook_id, result)
    return result


def _stop_if_failing_fast(job: JobContext, hook_id: str, result: HookResult) -> None:
    if job.fail_fast and result.status not in _PASSING and job.stop_reason is None:
        job.stop_reason = f"not run: --fail-fast after {hook_id} {result.status}"


async def _publish_end(
    publish: Publish, phase: PhaseName, hook_id: str, result: HookResult
) -> None:
    """The hook's one end event; a result that JSON cannot carry still ends it, as an error."""
    step = f"{phase}/{hook_id}"
    try:
        await publish(_end_event(result.status), step, hook_data(hook_id, phase, result))
    except TypeError as exc:
        broken = HookResult(
            status="error", reason=f"internal error: {exc}", duration=result.duration
        )
        await publish(E.HOOK_FAILED, step, hook_data(hook_id, phase, broken))


async def _answer(job: JobContext, ctx: HookContext, hook: Hook, prepared: Prepared) -> HookResult:
    files = ctx.files
    started = time.monotonic()
    key = None
    if job.cache is not None and prepared.cacheable:
        key = cache_key(
            prepared.identity,
            ((path, files.digest(path)) for path in prepared.inputs),
            job.config_fingerprint(),
        )
        cached = job.cache.get(key)
        if cached is not None:
            if ctx.on_test_case is not None:
                for case in cached.test_cases:
                    await ctx.on_test_case(case, len(cached.test_cases))
            # The duration is this run's (the lookup), not the one the cached result took.
            return msgspec.structs.replace(cached, duration=time.monotonic() - started)
    timeout = ctx.config.hook_timeout_for(hook.spec.id)
    result = keep_findings(
        await _execute(job, ctx, hook, prepared, timeout=timeout), ctx.config.max_findings
    )
    if key is not None and job.cache is not None:
        job.cache.put(key, result)
    return result


async def _execute(
    job: JobContext, ctx: HookContext, hook: Hook, prepared: Prepared, *, timeout: float
) -> HookResult:
    """Run the hook in a CPU slot; a file-local tool with much input runs as chunks, each in a
    slot of its own, whose results merge into the hook's one result."""
    chunks = _chunks(job, prepared)
    if len(chunks) == 1:
        async with job.limiter:
            return await hook.execute(ctx, prepared, timeout=timeout)
    started = time.monotonic()
    first_slot: list[float] = []  # the timeout counts from when the first chunk got a slot
    parts: list[HookResult] = [HookResult(status="error", reason="did not finish")] * len(chunks)

    async def one(index: int, chunk: tuple[str, ...]) -> None:
        async with job.limiter:
            if not first_slot:
                first_slot.append(time.monotonic())
            left = max(timeout - (time.monotonic() - first_slot[0]), 0.0)
            part = dataclasses.replace(prepared, inputs=chunk)
            parts[index] = await hook.execute(ctx, part, timeout=left)

    async with anyio.create_task_group() as tasks:
        for index, chunk in enumerate(chunks):
            tasks.start_soon(one, index, chunk)
    return merge_results(parts, duration=time.monotonic() - started, order=prepared.inputs)


def _chunks(job: JobContext, prepared: Prepared) -> list[tuple[str, ...]]:
    """One chunk per `chunk_bytes` of input, at most one per CPU slot."""
    if prepared.chunk_bytes <= 0 or len(prepared.inputs) < 2:
        return [prepared.inputs]
    files = job.hooks.files
    sizes = {path: files.size(path) for path in prepared.inputs}
    count = min(int(job.limiter.total_tokens), sum(sizes.values()) // prepared.chunk_bytes)
    return balanced_chunks(prepared.inputs, size=sizes.__getitem__, count=count)


def phase_status(results: list[HookResult]) -> str:
    """A phase fails if one of its hooks did; with no hook that ran, it is skipped."""
    statuses = {result.status for result in results}
    for status in ("error", "timeout", "failed"):
        if status in statuses:
            return "failed" if status == "failed" else status
    return "passed" if statuses - {"skipped"} else "skipped"


async def _run_hooks(job: JobContext, phase: PhaseName, hooks: list[Hook]) -> list[HookResult]:
    """Read-only hooks of a phase, concurrently, the slowest started first: the phase lasts at
    least as long as its longest hook, so that one must not wait for a CPU slot."""
    results: list[HookResult] = [HookResult(status="skipped")] * len(hooks)

    async def one(index: int, hook: Hook) -> None:
        results[index] = await run_hook(job, phase, hook)

    async with anyio.create_task_group() as tasks:
        for index in sorted(range(len(hooks)), key=lambda i: _start_rank(hooks[i])):
            tasks.start_soon(one, index, hooks[index])
    return results


def _start_rank(hook: Hook) -> int:
    """Known tools by their usual time, then the project's own commands, then the in-process
    checks (they share spruce's one interpreter, so they gain least from an early start)."""
    spec = hook.spec
    if spec.id in _SLOWEST_FIRST:
        return _SLOWEST_FIRST.index(spec.id)
    return len(_SLOWEST_FIRST) + (1 if spec.tool == IN_PROCESS else 0)


async def _hook_phase(job: JobContext, phase: PhaseName) -> str:
    """A phase of read-only hooks, wrapped in its phase and strategy events."""
    started_event, completed, failed = _PHASE_EVENTS[phase]
    hooks = job.plan.get(phase, [])
    ids = [hook.spec.id for hook in hooks]
    strategy = _STRATEGY[phase]
    if job.stop_reason is not None:
        return await skip_phase(job, phase, job.stop_reason)
    started = time.monotonic()
    await job.publish(started_event, phase, {"phase": phase, "hooks": ids})
    await job.publish(
        E.HOOK_STRATEGY_STARTED, phase, {"strategy": strategy, "phase": phase, "hooks": ids}
    )
    status = "cancelled"
    results: list[HookResult] = []
    try:
        results = await _run_hooks(job, phase, hooks)
        status = phase_status(results)
    except anyio.get_cancelled_exc_class():
        status = "cancelled" if job.cancel_reason else "timeout"
        raise
    finally:
        with anyio.CancelScope(shield=True):
            data = {"phase": phase, "status": status, "duration": _since(started)}
            data.update(_skip_reason(status, results))
            strategy_event = (
                E.HOOK_STRATEGY_FAILED if status not in _PASSING else E.HOOK_STRATEGY_COMPLETED
            )
            await job.publish(strategy_event, phase, {"strategy": strategy, **data})
            await job.publish(completed if status in _PASSING else failed, phase, data)
    return status


def _skip_reason(status: str, results: list[HookResult]) -> dict[str, str]:
    """A phase that ran but whose hooks were all skipped says why, like one that did not run."""
    if status != "skipped":
        return {}
    reasons = dict.fromkeys(result.reason for result in results if result.reason)
    return {"reason": "; ".join(filter(None, reasons)) or "no hook enabled"}


async def skip_phase(job: JobContext, phase: str, reason: str) -> str:
    """Report a phase that does not run: its COMPLETED event alone, status skipped."""
    completed = _PHASE_EVENTS[phase][1]
    data: dict[str, Any] = {"phase": phase, "status": "skipped", "duration": 0.0, "reason": reason}
    if phase == "tests":
        data.update(passed=0, failed=0, skipped=0, errors=0, total=0)
    if phase == "code_cleaning":
        data["changed_files"] = []
    await job.publish(completed, phase, data)
    return "skipped"


async def run_fast_hooks(job: JobContext) -> str:
    """The fast hooks: in-process checks, ruff, codespell, custom fast hooks."""
    return await _hook_phase(job, "fast_hooks")


async def run_comprehensive_hooks(job: JobContext) -> str:
    """The comprehensive hooks: mypy, bandit, vulture, custom comprehensive hooks."""
    return await _hook_phase(job, "comprehensive_hooks")


async def run_code_cleaning(job: JobContext, *, fix: bool) -> str:
    """Apply the safe fixes one fixer after another (only with --fix); report changed files."""
    if not fix:
        return await skip_phase(job, "code_cleaning", "runs only with --fix")
    if job.stop_reason is not None:
        return await skip_phase(job, "code_cleaning", job.stop_reason)
    started_event, completed, failed = _PHASE_EVENTS["code_cleaning"]
    hooks = job.plan.get("code_cleaning", [])
    started = time.monotonic()
    await job.publish(
        started_event,
        "code_cleaning",
        {"phase": "code_cleaning", "hooks": [h.spec.id for h in hooks]},
    )
    results: list[HookResult] = []
    status = "cancelled"
    try:
        for hook in hooks:  # fixers write files: one at a time, in a fixed order
            results.append(await run_hook(job, "code_cleaning", hook))
        status = phase_status(results)
    except anyio.get_cancelled_exc_class():
        status = "cancelled" if job.cancel_reason else "timeout"
        raise
    finally:
        changed = sorted({path for result in results for path in result.changed_files})
        with anyio.CancelScope(shield=True):
            data = {
                "phase": "code_cleaning",
                "status": status,
                "duration": _since(started),
                "changed_files": changed,
                **_skip_reason(status, results),
            }
            await job.publish(completed if status in _PASSING else failed, "code_cleaning", data)
    return status


class SuiteRun:
    """The tests phase's hooks, which may begin before the phase's turn.

    Once no phase left before the tests writes files (after code cleaning), the suite only reads
    the project, like the checks still running: it may run beside them, on one of the job's CPU
    slots. Its events wait here, in order, until the tests phase starts, so the stream keeps the
    phase order; from then on they are published live."""

    def __init__(self, job: JobContext) -> None:
        self._job = job
        self._held: deque[tuple[E, str | None, dict[str, Any]]] = deque()
        self._live = False
        self._went_live = anyio.Event()
        self.finished = anyio.Event()
        self.results: list[HookResult] = []
        self.cases: list[TestCase] = []
        self.total: int | None = None
        self.began: float | None = None

    async def run(self) -> None:
        """Run the phase's hooks in order (early in a task of its own, or at the phase's turn)."""
        self.began = time.monotonic()
        ctx = dataclasses.replace(self._job.hooks, on_test_case=self._on_case)
        try:
            for hook in self._job.plan.get("tests", []):
                result = await run_hook(self._job, "tests", hook, ctx=ctx, publish=self._emit)
                self.results.append(result)
        finally:
            self.finished.set()

    async def go_live(self) -> None:
        """Publish what was held, in order, then publish as events come."""
        await self.publish_held()
        self._live = True  # no await since the queue was seen empty: nothing slips between
        self._went_live.set()

    async def publish_held(self) -> None:
        """Publish the events still held (also what a run cancelled mid-way left behind)."""
        while self._held:
            try:
                await self._job.publish(*self._held[0])
            except TypeError:  # checked when held, so not expected: the phase must still end
                _log.exception("job %s: a held event could not be published", self._job.job_id)
            self._held.popleft()  # only once published: a cancel during it loses nothing

    async def _emit(self, event: E, step: str | None, data: dict[str, Any]) -> None:
        if self._live:
            await self._job.publish(event, step, data)
            return
        # Refused now, like a live publish, so the hook's end event can still say why.
        check_encodable(
            Event(
                event=event, job_id=self._job.job_id, seq=1, step_id=step, timestamp=0.0, data=data
            )
        )
        self._held.append((event, step, data))

    async def _on_case(self, case: TestCase, total: int | None) -> None:
        if not self._live and len(self._held) >= HELD_EVENTS_LIMIT:
            # A suite that reports this much before its turn waits for it: its reports stay
            # in the pipe, and pytest pauses once the pipe is full. Only test reports wait
            # here, never a hook's end event (which must be recorded even when cancelled).
            await self._went_live.wait()
        self.cases.append(case)
        self.total = total
        data = {**msgspec.to_builtins(case), "done": len(self.cases), "total": total}
        await self._emit(E.TEST_CASE_COMPLETED, f"tests/{case.nodeid}", data)

    def counts(self) -> dict[str, int]:
        """The tests phase's end counts."""
        return count_outcomes(self.cases)


def begin_tests_early(job: JobContext, tasks: anyio.abc.TaskGroup) -> SuiteRun | None:
    """Start the test suite now, beside the read-only phases still to come; None when the
    project turned that off, `--fail-fast` wants the phases one after another, there is nothing
    to run, or the job has a single CPU slot (the checks would wait for the whole suite).
    `run_test_workflow` publishes its events at the phase's turn."""
    if (
        job.fail_fast
        or not job.hooks.config.start_tests_early
        or not job.plan.get("tests")
        or job.limiter.total_tokens < 2
    ):
        return None
    early = SuiteRun(job)
    tasks.start_soon(early.run)
    return early


async def run_test_workflow(job: JobContext, early: SuiteRun | None = None) -> str:
    """The test suite: one TEST_CASE_COMPLETED per test, live, then the counts."""
    if job.stop_reason is not None:  # only with --fail-fast, which starts nothing early
        return await skip_phase(job, "tests", job.stop_reason)
    started_event, completed, failed = _PHASE_EVENTS["tests"]
    tests = early or SuiteRun(job)
    started = tests.began or time.monotonic()
    data: dict[str, Any] = {"phase": "tests", "total": tests.total}
    if tests.began is not None:
        data["began_early"] = _since(tests.began)  # seconds the suite has already run
    await job.publish(started_event, "tests", data)
    status = "cancelled"
    try:
        await tests.go_live()
        if early is None:
            await tests.run()
        else:
            await tests.finished.wait()
        status = phase_status(tests.results)
    except anyio.get_cancelled_exc_class():
        status = "cancelled" if job.cancel_reason else "timeout"
        raise
    finally:
        with anyio.CancelScope(shield=True):
            if early is not None:  # its hooks' end events come before the phase's
                with anyio.move_on_after(_EARLY_GRACE):
                    await tests.finished.wait()
            await tests.publish_held()
            data = {
                "phase": "tests",
                "status": status,
                "duration": _since(started),
                **tests.counts(),
                **_skip_reason(status, tests.results),
            }
            await job.publish(completed if status in _PASSING else failed, "tests", data)
    return status


def _since(started: float) -> float:
    return round(time.monotonic() - started, 4)
