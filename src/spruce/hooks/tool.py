"""A hook that runs an external tool as `python -m MODULE …` in a process group of its own.

Each tool family module (ruff, mypy, bandit, vulture, codespell) gives its arguments, the exit
codes that mean "findings", and a parser from the tool's output to normalised findings.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from spruce import __version__
from spruce.hooks.base import (
    Finding,
    HookContext,
    HookResult,
    Prepared,
    bounded_tail,
    select_inputs,
)
from spruce.hooks.batches import (
    ARGS_FROM,
    LAUNCHER,
    arg_bytes,
    fit_batches,
    line_budget,
    merge_results,
)
from spruce.hooks.vulture_prelude import STATE_ENV
from spruce.workflow.catalog import install_hint, tool_python
from spruce.workflow.definitions import HookSpec
from spruce.workflow.process import ProcessResult, run_process
from spruce.workflow.toolenv import ToolEnv, fingerprint

Parser = Callable[[ProcessResult, Path], list[Finding]]
_TAIL: Final = 2000


def tool_env() -> dict[str, str]:
    """The environment tools run with: the caller's, minus colour, plus UTF-8 I/O."""
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "PYTHONIOENCODING": "utf-8", "FORCE_COLOR": ""})
    env.pop("FORCE_COLOR")
    return env


def env_fingerprint(env: ToolEnv) -> str:
    """A hash of an environment's interpreter and installed distributions (cache keys)."""
    return fingerprint(env)


def version_at_least(version: str, since: str) -> bool:
    """Whether a tool's version (`0.17.6`, `2.4.1rc1`) is `since` or later; unknown is not."""

    def numbers(text: str) -> tuple[int, ...]:
        parts = []
        for part in text.split("."):
            digits = "".join(itertools.takewhile(str.isdigit, part))
            if not digits:
                break
            parts.append(int(digits))
        return tuple(parts)

    found = numbers(version)
    return bool(found) and found >= numbers(since)


def output_tail(result: ProcessResult) -> str:
    """The last lines a failing tool printed, for the `reason` of an error."""
    text = (result.stderr.strip() or result.stdout.strip())[-_TAIL:]
    return text or f"exit code {result.exit_code}"


def combined_output(result: ProcessResult) -> str:
    """What the tool printed, stdout then stderr, bounded to its last 8 KB."""
    parts = [part.rstrip("\n") for part in (result.stdout, result.stderr) if part.strip()]
    return bounded_tail("\n".join(parts))


@dataclass(frozen=True, kw_only=True)
class ToolHook:
    """One external tool run over the hook's files (or the whole project)."""

    spec: HookSpec
    args: tuple[str, ...]
    parse: Parser
    suffixes: tuple[str, ...] = (".py", ".pyi")
    # (suffix, first version of the tool that takes such files by default)
    later_suffixes: tuple[tuple[str, str], ...] = ()
    exclude: tuple[str, ...] = ()
    findings_exit: frozenset[int] = frozenset({1})
    fixer: bool = False
    env_bound: bool = False  # the tool reads the project's installed packages (mypy)
    extra_args: Callable[[HookContext, Path], Sequence[str]] = field(default=lambda ctx, py: ())
    narrow: Callable[[tuple[str, ...]], tuple[str, ...]] = field(default=lambda inputs: inputs)
    # exit codes that mean a tool error unless the output still lists findings
    findings_or_error_exit: frozenset[int] = frozenset()
    splittable: bool = False  # file-local: its file list may be cut into runs and merged
    chunk_bytes: int = 0  # with this many bytes of input per run, it may run in parallel chunks
    prelude: str = ""  # Python run in the tool's process before the tool (never changes results)
    # The prelude keeps the tool's per-file state in spruce's state directory (given in STATE_ENV)
    keeps_state: bool = False

    def prepare(self, ctx: HookContext) -> Prepared | str:
        env = tool_python(self.spec, ctx.env, ctx.own)
        if env is None:
            return install_hint(self.spec)
        assert self.spec.module is not None and self.spec.package is not None
        argv = (
            str(env.python),
            "-m",
            self.spec.module,
            *self.args,
            *self.extra_args(ctx, env.python),
            *ctx.config.hook(self.spec.id).args,
        )
        version = env.version(self.spec.package) or "?"
        suffixes = self.suffixes + tuple(
            suffix for suffix, since in self.later_suffixes if version_at_least(version, since)
        )
        inputs = self.narrow(
            select_inputs(ctx, self.spec.id, suffixes=suffixes, exclude=self.exclude)
        )
        # The tool's own environment decides its result (plugins, the interpreter); a tool that
        # imports the project's packages (mypy) also depends on the project's environment.
        key = env_fingerprint(env)
        if self.env_bound and ctx.env is not env:
            key += "+" + env_fingerprint(ctx.env)
        if self.prelude:
            key += "+" + hashlib.blake2b(self.prelude.encode(), digest_size=6).hexdigest()
        return Prepared(
            inputs=inputs,
            identity=(__version__, self.spec.tool, version, key, *argv),
            cacheable=not self.fixer,
            per_file=self.splittable and not self.fixer,
            chunk_bytes=self.chunk_bytes if self.splittable else 0,
        )

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        started = time.monotonic()
        argv = prepared.identity[4:]
        env = tool_env()
        if self.keeps_state and ctx.state is not None:
            env[STATE_ENV] = str(ctx.state / self.spec.id)
        room = line_budget(env) - arg_bytes(self._launch(argv))
        # A file-local tool runs once per batch that fits a command line; a whole-program tool
        # runs once, reading an overlong file list from a file.
        batches = fit_batches(prepared.inputs, room=room) if self.splittable else [prepared.inputs]
        parts: list[HookResult] = []
        for number, batch in enumerate(batches):
            left = timeout - (time.monotonic() - started)
            command = self._command(ctx, argv, batch, room=room, number=number)
            result = await run_process(command, cwd=ctx.project, timeout=max(left, 0.0), env=env)
            parts.append(self._judge(ctx, result, batch, timeout=timeout))
            if parts[-1].status == "timeout":
                break
        return merge_results(parts, duration=time.monotonic() - started, order=prepared.inputs)

    def _launch(self, argv: Sequence[str]) -> list[str]:
        """`python -m MODULE ARGS`, or the launcher running the tool after its prelude."""
        if not self.prelude:
            return list(argv)
        return [argv[0], "-c", self.prelude + LAUNCHER, argv[2], *argv[3:]]

    def _command(
        self, ctx: HookContext, argv: Sequence[str], files: Sequence[str], *, room: int, number: int
    ) -> list[str]:
        launch = self._launch(argv)
        if arg_bytes(files) <= room:
            return [*launch, *files]
        # Only a whole-program tool gets here: its arguments go through a file.
        listing = ctx.scratch / f"{self.spec.id}-{os.getpid()}-{number}.args"
        listing.write_text("\0".join([*argv[3:], *files]), encoding="utf-8")
        return [argv[0], "-c", self.prelude + LAUNCHER, argv[2], ARGS_FROM, str(listing)]

    def _judge(
        self, ctx: HookContext, result: ProcessResult, files: Sequence[str], *, timeout: float
    ) -> HookResult:
        """The result of one run of the tool over `files`."""
        duration = result.duration
        if result.timed_out:
            return HookResult(
                status="timeout",
                reason=f"timed out after {timeout:g}s",
                duration=duration,
                output_tail=combined_output(result),
            )
        if self.fixer:
            changed = ctx.files.refresh(files)
            ok = result.exit_code in (0, *self.findings_exit)
            return HookResult(
                status=("fixed" if changed else "passed") if ok else "error",
                exit_code=result.exit_code,
                changed_files=tuple(changed),
                reason=None if ok else output_tail(result),
                duration=duration,
                output_tail=combined_output(result),
            )
        findings: list[Finding] = []
        if result.exit_code in (0, *self.findings_exit, *self.findings_or_error_exit):
            findings = self.parse(result, ctx.project)
        if result.exit_code in self.findings_or_error_exit and findings:
            status, reason = "failed", None
        elif result.exit_code == 0 and not findings:
            status, reason = "passed", None
        elif result.exit_code == 0 or result.exit_code in self.findings_exit:
            status, reason = "failed", None if findings else output_tail(result)
        else:
            status, reason = "error", output_tail(result)
        return HookResult(
            status=status,  # type: ignore[arg-type]
            exit_code=result.exit_code,
            findings=tuple(findings),
            reason=reason,
            duration=duration,
            output_tail=combined_output(result),
        )
