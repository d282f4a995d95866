"""pytest: the test phase's one hook; per-test results arrive live through a pipe from the
plugin in `pytest_plugin.py`, never by reading pytest's terminal output."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio
import msgspec

from spruce import __version__
from spruce.hooks.base import (
    Finding,
    HookContext,
    HookResult,
    Prepared,
    TestCase,
    bounded_longrepr,
)
from spruce.hooks.pytest_workers import (
    Times,
    choose_workers,
    estimate,
    load_times,
    merge_results,
    parallel_by_project,
    save_times,
    write_shard,
    xdist_usable,
)
from spruce.hooks.tool import env_fingerprint, output_tail, tool_env
from spruce.workflow.catalog import install_hint, tool_python
from spruce.workflow.definitions import HOOKS_BY_ID, HookSpec
from spruce.workflow.process import (
    ProcessResult,
    open_pipe,
    poll_pipe,
    run_process,
    usable_cpus,
)
from spruce.workflow.selection import Selector, open_selector

_PLUGIN: Final = "spruce_pytest_plugin"
# The plugin runs inside the project's pytest and imports pytest, which spruce itself may lack:
# copy its source by path and share only the variable's name, never import it here.
_PLUGIN_SOURCE: Final = Path(__file__).with_name("pytest_plugin.py")
_PLUGIN_FD_ENV: Final = "SPRUCE_PYTEST_FD"  # pytest_plugin.ENV_FD
_SHARD_ENV: Final = "SPRUCE_PYTEST_SHARD"  # pytest_plugin.ENV_SHARD
_LINE_LIMIT: Final = 1 << 20
_POLL: Final = 0.02  # seconds between two looks at the plugin's reports: their most delay
_OUTPUT_POLL: Final = 0.1  # pytest's own output is only read for an error's reason
_NO_TESTS: Final = 5


@dataclass(frozen=True, kw_only=True)
class PytestHook:
    """Runs the project's test suite in its own interpreter."""

    spec: HookSpec = HOOKS_BY_ID["pytest"]

    def prepare(self, ctx: HookContext) -> Prepared | str:
        env = tool_python(self.spec, ctx.env, ctx.own)
        if env is None:
            return install_hint(self.spec)
        argv = (
            str(env.python),
            "-m",
            "pytest",
            "-p",
            _PLUGIN,
            "-q",
            "--tb=short",  # the traceback each case reports: pytest then makes it only once
            *ctx.config.hook("pytest").args,
        )
        # Tests may read any file of the project, so every file is an input.
        inputs = ctx.files.select(include=ctx.config.hook("pytest").paths)
        version = env.version("pytest") or "?"
        return Prepared(
            inputs=tuple(inputs),
            identity=(__version__, "pytest", version, env_fingerprint(env), *argv),
        )

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        started = time.monotonic()
        shutil.copyfile(_PLUGIN_SOURCE, ctx.scratch / f"{_PLUGIN}.py")
        env = tool_env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ctx.scratch), env.get("PYTHONPATH")]))
        argv = list(prepared.identity[4:])
        selector = open_selector(ctx, prepared)
        if selector is not None:
            extra_args, extra_env = selector.begin()
            argv += extra_args
            env.update(extra_env)
        times = load_times(ctx.state)
        workers, extra_args, envs = self._workers(ctx, env, times, selector)
        argv += extra_args
        shards: list[list[TestCase]] = [[] for _ in envs]
        totals: list[int | None] = [None] * len(envs)
        results: list[ProcessResult | None] = [None] * len(envs)

        async def run(index: int) -> None:
            reporter = _Reporter(ctx=ctx, cases=shards[index], totals=totals, index=index)
            results[index] = await reporter.run(argv, envs[index], timeout)

        async with anyio.create_task_group() as tasks:
            for index in range(len(envs)):
                tasks.start_soon(run, index)
        cases = [case for shard in shards for case in shard]
        ended = merge_results([result for result in results if result is not None])
        outcome = _result(ended, cases, timeout, time.monotonic() - started)
        outcome = msgspec.structs.replace(outcome, workers=workers)
        if outcome.status in ("passed", "failed"):
            save_times(ctx.state, times, cases)
        return outcome if selector is None else selector.finish(outcome)

    def _workers(
        self,
        ctx: HookContext,
        env: dict[str, str],
        times: Times,
        selector: Selector | None,
    ) -> tuple[int | None, list[str], list[dict[str, str]]]:
        """How many processes run the tests (None: the project's own `-n` decides), the pytest
        arguments that ask for them, and each one's environment: one with pytest-xdist's `-n`
        when the project has it, else one per shard."""
        args = ctx.config.hook("pytest").args
        if parallel_by_project(args):
            return None, [], [env]
        carried = selector.carried if selector is not None else {}
        seconds = estimate(times, carried)
        cpus = ctx.test_cpus or usable_cpus()
        workers = choose_workers(ctx.config.test_workers, seconds=seconds, cpus=cpus)
        if workers == 1:
            return 1, [], [env]
        python = tool_python(self.spec, ctx.env, ctx.own)
        if python is not None and xdist_usable(python, args):
            return workers, ["-n", str(workers)], [env]
        envs = []
        for index in range(workers):
            shard_env = dict(env)
            shard_env[_SHARD_ENV] = str(write_shard(ctx.scratch, index, workers, times))
            if selector is not None:
                shard_env.update(selector.shard_env(index))
            envs.append(shard_env)
        return workers, [], envs


@dataclass(kw_only=True)
class _Reporter:
    """One pytest process and the test cases its plugin reports on a pipe while it runs."""

    ctx: HookContext
    cases: list[TestCase]
    totals: list[int | None]  # each process's count of tests to run, once collected
    index: int = 0

    async def run(self, argv: list[str], env: dict[str, str], timeout: float) -> ProcessResult:
        read_fd, write_fd = open_pipe()
        env = {**env, _PLUGIN_FD_ENV: str(write_fd)}
        write_open = [True]

        def close_writer() -> None:
            if write_open[0]:
                os.close(write_fd)
                write_open[0] = False

        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._read_cases, read_fd)
                try:
                    result = await run_process(
                        argv,
                        cwd=self.ctx.project,
                        timeout=timeout,
                        env=env,
                        pass_fds=(write_fd,),
                        on_spawn=close_writer,
                        poll=_OUTPUT_POLL,
                    )
                finally:
                    close_writer()
        finally:
            close_writer()
        return result

    async def _read_cases(self, fd: int) -> None:
        pending = b""
        try:
            # Looked at every few milliseconds rather than woken by each report: fast tests
            # report every millisecond or so, and then the bus handles them in batches.
            async with contextlib.aclosing(poll_pipe(fd, interval=_POLL)) as blocks:
                async for block in blocks:
                    *lines, pending = (pending + block).split(b"\n")
                    if len(pending) > _LINE_LIMIT:
                        pending = b""  # a line no test report makes; drop it rather than grow
                    for line in lines:
                        await self._case(line)
        finally:
            os.close(fd)

    async def _case(self, line: bytes) -> None:
        with contextlib.suppress(ValueError, TypeError, KeyError, msgspec.ValidationError):
            message = json.loads(line)
            if message.get("kind") == "collected":
                self.totals[self.index] = int(message["total"])
                return
            text, longrepr = message["message"], message.get("longrepr")
            case = msgspec.convert(
                {
                    "nodeid": _utf8(message["nodeid"]),
                    "outcome": message["outcome"],
                    "duration": float(message["duration"]),
                    "path": _utf8(message["path"]),
                    "line": message["line"],
                    "message": None if text is None else _utf8(text),
                    "longrepr": None if longrepr is None else bounded_longrepr(_utf8(longrepr)),
                    "when": str(message.get("when") or "call"),
                },
                TestCase,
            )
            self.cases.append(case)
            if self.ctx.on_test_case is not None:
                known = [total for total in self.totals if total is not None]
                total = sum(known) if len(known) == len(self.totals) else None
                await self.ctx.on_test_case(case, total)


def _utf8(value: object) -> str:
    """Text events can carry: a test file whose name is not UTF-8 reaches us as lone
    surrogates, which JSON cannot encode."""
    return str(value).encode("utf-8", "replace").decode("utf-8")


def _result(
    result: ProcessResult, cases: list[TestCase], timeout: float, duration: float
) -> HookResult:
    """Map pytest's exit code: 5 is "no tests", 2 with reported errors is a collection failure."""
    findings = tuple(case_finding(case) for case in cases if case.outcome in ("failed", "error"))
    base = HookResult(
        status="passed",
        exit_code=result.exit_code,
        findings=findings,
        test_cases=tuple(cases),
        duration=duration,
    )
    code = result.exit_code
    if result.timed_out:
        return msgspec.structs.replace(
            base, status="timeout", reason=f"timed out after {timeout:g}s"
        )
    if code == 0:
        return base
    if code == _NO_TESTS:
        return msgspec.structs.replace(base, status="skipped", reason="no tests collected")
    if code in (1, 2) and findings:
        return msgspec.structs.replace(base, status="failed")
    return msgspec.structs.replace(base, status="error", reason=error_reason(output_tail(result)))


def case_finding(case: TestCase) -> Finding:
    """A failed or erroring test as a finding at its failing line, its message led by the
    nodeid so that two cases of one parametrized test can be told apart."""
    return Finding(
        path=case.path,
        line=case.line or 1,
        column=1,
        code="test-failed" if case.outcome == "failed" else "test-error",
        message=f"{case.nodeid}: {case.message}" if case.message else case.nodeid,
        severity="error",
        tool="pytest",
    )


def error_reason(output: str) -> str:
    """pytest's output when it could not start (a conftest that fails to import), led by its
    cause (the last `E   ` line) so that the first line of the reason says it."""
    causes = [line[1:].strip() for line in output.splitlines() if line.startswith("E ")]
    if not causes:
        return output
    lines = output.strip().splitlines()
    head = lines[0].rstrip(" .") if lines else "pytest failed"
    return f"{head}: {causes[-1]}\n{output}"
