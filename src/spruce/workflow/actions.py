"""The workflow's actions, one per phase: `run_fast_hooks`, `run_code_cleaning`,
`run_comprehensive_hooks`, `run_test_workflow`. Each publishes its phase's events and those of
its hooks, and returns the phase's status."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import msgspec

from spruce.bus import WorkflowEventBus
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
from spruce.workflow.cache import CONFIG_FILES, ResultCache, cache_env_values, cache_key
from spruce.workflow.definitions import IN_PROCESS, PhaseName
from spruce.workflow.perfile import answer_per_file, per_file_key
from spruce.workflow.process import usable_cpus
from spruce.workflow.scope import HookGate
from spruce.workflow.selection import phase_fields

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
            ) + cache_env_values(self.hooks.config.cache_env) or (("", ""),)
        return self.config_digests


Publish = Callable[[E, str | None, dict[str, Any]], Awaitable[None]]


def hook_data(
    hook_id: str, phase: str, result: HookResult, *, queued: float = 0.0
) -> dict[str, Any]:
    """The `data` of a hook's end event (docs/events.md)."""
    return {
        "hook": hook_id,
        "phase": phase,
        "status": result.status,
        "duration": round(result.duration, 4),
        "queued": round(queued, 4),
        "exit_code": result.exit_code,
        "findings": result.findings_total,
        "findings_total": result.findings_total,
        "findings_truncated": len(result.findings) < result.findings_total,
        "cached": result.cached,
        "reason": result.reason,
        "details": msgspec.to_builtins(result.findings),
        "details_truncated": len(result.findings) < result.findings_total,
        "changed_files": list(result.changed_files),
        **_file_counts(result),
        **({} if result.workers is None else {"workers": result.workers}),
        "output_tail": result.output_tail,
    }


def _file_counts(result: HookResult) -> dict[str, int]:
    """`files_checked`/`files_cached` of a file-local hook (absent for the others)."""
    if result.files_checked is None or result.files_cached is None:
        return {}
    return {"files_checked": result.files_checked, "files_cached": result.files_cached}


def _end_event(status: str) -> E:
    if status == "skipped":
        return E.HOOK_SKIPPED
    return E.HOOK_COMPLETED if status in _PASSING else E.HOOK_FAILED


class HookClock:
    """When one hook was ready to run and when it got its CPU slot: queued vs running time.

    `start` publishes HOOK_STARTED once, at the moment the hook really starts running."""

    def __init__(self, publish: Publish, phase: PhaseName, hook_id: str) -> None:
        self._publish = publish
        self._step = f"{phase}/{hook_id}"
        self._data = {"hook": hook_id, "phase": phase}
        self.ready = time.monotonic()
        self.began: float | None = None

    async def start(self) -> None:
        """The hook got its slot (or its cache answer): publish its start, once."""
        if self.began is None:
            self.began = time.monotonic()
            await self._publish(E.HOOK_STARTED, self._step, {**self._data, "queued": self.queued})

    @property
    def queued(self) -> float:
        """Seconds waited for a slot (until now while still waiting)."""
        return round((self.began or time.monotonic()) - self.ready, 4)

    def running(self) -> float:
        """Seconds since the hook started running; 0 if it never did."""
        return 0.0 if self.began is None else time.monotonic() - self.began


async def run_hook(
    job: JobContext, phase: PhaseName, hook: Hook, *, ctx: HookContext | None = None
) -> HookResult:
    """Run one hook (or answer it from the cache) between HOOK_STARTED and its end event.

    HOOK_STARTED waits until the hook has a CPU slot; its end event says how long it waited
    (`queued`) apart from how long it ran (`duration`). `ctx` defaults to the job's; the tests
    phase passes its own (with a sink for test cases)."""
    ctx = ctx or job.hooks
    publish = job.publish
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
    clock = HookClock(publish, phase, hook_id)
    result = HookResult(status="error", reason="did not finish")
    try:
        result = await _answer(job, ctx, hook, prepared, clock)
    except anyio.get_cancelled_exc_class():
        reason = job.cancel_reason
        result = HookResult(
            status="skipped" if reason else "timeout",
            reason=reason or "the job timed out",
            duration=clock.running(),
        )
        raise
    except Exception as exc:  # a hook's own bug must not end the job without its events
        result = HookResult(
            status="error", reason=f"internal error: {exc!r}", duration=clock.running()
        )
    finally:
        with anyio.CancelScope(shield=True):
            await _publish_end(publish, phase, hook_id, result, queued=clock.queued)
    _stop_if_failing_fast(job, hook_id, result)
    return result


def _stop_if_failing_fast(job: JobContext, hook_id: str, result: HookResult) -> None:
    if job.fail_fast and result.status not in _PASSING and job.stop_reason is None:
        job.stop_reason = f"not run: --fail-fast after {hook_id} {result.status}"


async def _publish_end(
    publish: Publish, phase: PhaseName, hook_id: str, result: HookResult, *, queued: float
) -> None:
    """The hook's one end event; a result that JSON cannot carry still ends it, as an error."""
    step = f"{phase}/{hook_id}"
    try:
        data = hook_data(hook_id, phase, result, queued=queued)
        await publish(_end_event(result.status), step, data)
    except TypeError as exc:
        broken = HookResult(
            status="error", reason=f"internal error: {exc}", duration=result.duration
        )
        await publish(E.HOOK_FAILED, step, hook_data(hook_id, phase, broken, queued=queued))


async def _answer(
    job: JobContext, ctx: HookContext, hook: Hook, prepared: Prepared, clock: HookClock
) -> HookResult:
    files = ctx.files
    key = None
    if job.cache is not None and prepared.cacheable:
        key = cache_key(
            prepared.identity,
            ((path, files.digest(path)) for path in prepared.inputs),
            job.config_fingerprint(),
        )
        cached = job.cache.get(key)
        if cached is not None:
            await clock.start()  # an answer from the cache needs no slot
            if ctx.on_test_case is not None:
                for case in cached.test_cases:
                    await ctx.on_test_case(case, len(cached.test_cases))
            # The duration is this run's (the lookup and replay), not the one it took then.
            return msgspec.structs.replace(
                cached, duration=clock.running(), **_all_cached(prepared)
            )
    timeout = ctx.config.hook_timeout_for(hook.spec.id)
    if key is not None and job.cache is not None and prepared.per_file:
        result = await answer_per_file(
            job.cache,
            per_file_key(key_without_inputs(prepared, job), str(ctx.project)),
            files,
            prepared,
            lambda part: _execute(job, ctx, hook, part, clock, timeout=timeout),
        )
        await clock.start()  # answered from the per-file results alone: it started, too
    else:
        result = await _execute(job, ctx, hook, prepared, clock, timeout=timeout)
        if prepared.per_file:
            result = msgspec.structs.replace(
                result, files_checked=len(prepared.inputs), files_cached=0
            )
    result = keep_findings(result, ctx.config.max_findings)
    if key is not None and job.cache is not None:
        job.cache.put(key, result)
    return result


def _all_cached(prepared: Prepared) -> dict[str, int]:
    if not prepared.per_file:
        return {}
    return {"files_checked": 0, "files_cached": len(prepared.inputs)}


def key_without_inputs(prepared: Prepared, job: JobContext) -> str:
    """The hook's key minus its input files: what per-file results are stored under."""
    return cache_key(prepared.identity, (), job.config_fingerprint())


async def _execute(
    job: JobContext,
    ctx: HookContext,
    hook: Hook,
    prepared: Prepared,
    clock: HookClock,
    *,
    timeout: float,
) -> HookResult:
    """Run the hook in a CPU slot; a file-local tool with much input runs as chunks, each in a
    slot of its own, whose results merge into the hook's one result. The hook starts, and its
    timeout counts, from when its first slot is granted."""
    chunks = _chunks(job, prepared)
    if len(chunks) == 1:
        async with job.limiter:
            await clock.start()
            return await hook.execute(ctx, prepared, timeout=timeout)
    parts: list[HookResult] = [HookResult(status="error", reason="did not finish")] * len(chunks)

    async def one(index: int, chunk: tuple[str, ...]) -> None:
        async with job.limiter:
            await clock.start()
            left = max(timeout - clock.running(), 0.0)
            part = dataclasses.replace(prepared, inputs=chunk)
            parts[index] = await hook.execute(ctx, part, timeout=left)

    async with anyio.create_task_group() as tasks:
        for index, chunk in enumerate(chunks):
            tasks.start_soon(one, index, chunk)
    return merge_results(parts, duration=clock.running(), order=prepared.inputs)


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
    """The tests phase, from its start event to its end event; it may begin before its turn.

    Once no phase left before the tests writes files (after code cleaning), the suite only reads
    the project, like the checks still running: it may run beside them, on one of the job's CPU
    slots. Its events are published as they happen (SPEC §5): the phase's start when the suite
    starts, each test as it ends, the phase's end after its hooks' ends."""

    def __init__(self, job: JobContext, *, cpus: int | None = None) -> None:
        self._job = job
        self._cpus = cpus  # what the suite's workers may take (None: every usable CPU)
        self.finished = anyio.Event()
        self.status = "cancelled"
        self.results: list[HookResult] = []
        self.cases: list[TestCase] = []
        self.total: int | None = None

    async def run_early(self) -> None:
        """The phase, started beside the read-only checks (in a task of its own)."""
        await self.run(early=True)

    async def run(self, *, early: bool = False) -> str:
        """Run the phase's hooks in order between the phase's start and end events."""
        started_event, completed, failed = _PHASE_EVENTS["tests"]
        started = time.monotonic()
        ctx = dataclasses.replace(self._job.hooks, on_test_case=self._on_case, test_cpus=self._cpus)
        try:
            data: dict[str, Any] = {"phase": "tests", "total": None, "inputs": self._inputs()}
            if early:
                data["early"] = True  # it runs beside the checks, which may still be running
            await self._job.publish(started_event, "tests", data)
            for hook in self._job.plan.get("tests", []):
                self.results.append(await run_hook(self._job, "tests", hook, ctx=ctx))
            self.status = phase_status(self.results)
        except anyio.get_cancelled_exc_class():
            self.status = "cancelled" if self._job.cancel_reason else "timeout"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                end = {
                    "phase": "tests",
                    "status": self.status,
                    "duration": _since(started),
                    **phase_fields(self.results, self.counts()),
                    **_skip_reason(self.status, self.results),
                }
                await self._job.publish(
                    completed if self.status in _PASSING else failed, "tests", end
                )
            self.finished.set()
        return self.status

    def _inputs(self) -> str:
        """A digest of the project's files and config as the suite sees them: two runs with
        the same digest ran the same tests on the same inputs (how flaky tests are found)."""
        files = self._job.hooks.files
        digests = ((path, files.digest(path)) for path in files.paths)
        return cache_key(("tests",), digests, self._job.config_fingerprint())

    async def _on_case(self, case: TestCase, total: int | None) -> None:
        self.cases.append(case)
        self.total = total
        data = {**msgspec.to_builtins(case), "done": len(self.cases), "total": total}
        await self._job.publish(E.TEST_CASE_COMPLETED, f"tests/{case.nodeid}", data)

    def counts(self) -> dict[str, int]:
        """The tests phase's end counts."""
        return count_outcomes(self.cases)


def begin_tests_early(job: JobContext, tasks: anyio.abc.TaskGroup) -> SuiteRun | None:
    """Start the tests phase now, beside the read-only phases still to come; None when the
    project turned that off, `--fail-fast` wants the phases one after another, there is nothing
    to run, or the job has a single CPU slot (the checks would wait for the whole suite)."""
    if (
        job.fail_fast
        or not job.hooks.config.start_tests_early
        or not job.plan.get("tests")
        or job.limiter.total_tokens < 2
    ):
        return None
    early = SuiteRun(job, cpus=_cpus_beside_checks(job))
    tasks.start_soon(early.run_early)
    return early


def _cpus_beside_checks(job: JobContext) -> int | None:
    """The CPUs a suite started early may spread over: one is left to the checks that run
    beside it (measured: on two CPUs, two test processes beside mypy and bandit lost time)."""
    beside = [
        hook
        for hook in (*job.plan.get("fast_hooks", []), *job.plan.get("comprehensive_hooks", []))
        if job.gate is None or job.gate.refuse(hook.spec.id) is None
    ]
    return max(1, int(job.limiter.total_tokens) - 1) if beside else None


async def run_test_workflow(job: JobContext, early: SuiteRun | None = None) -> str:
    """The test suite: one TEST_CASE_COMPLETED per test, live, then the counts.  A suite that
    began early has published its own events: at the phase's turn, wait for its end."""
    if early is not None:
        await early.finished.wait()
        return early.status
    if job.stop_reason is not None:  # only with --fail-fast, which starts nothing early
        return await skip_phase(job, "tests", job.stop_reason)
    return await SuiteRun(job).run()


def _since(started: float) -> float:
    return round(time.monotonic() - started, 4)
