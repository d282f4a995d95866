"""The project's own command hooks (`[[tool.spruce.custom]]`), run without a shell."""

from __future__ import annotations

import time
from dataclasses import dataclass

from spruce import __version__
from spruce.config import CustomHook
from spruce.hooks.base import HookContext, HookResult, Prepared, select_inputs
from spruce.hooks.tool import combined_output, output_tail, tool_env
from spruce.workflow.definitions import HookSpec
from spruce.workflow.process import run_process


@dataclass(frozen=True, kw_only=True)
class CommandHook:
    """A custom command: exit 0 passes, anything else fails with the command's output."""

    spec: HookSpec
    hook: CustomHook

    @classmethod
    def from_config(cls, hook: CustomHook) -> CommandHook:
        """Wrap one `[[tool.spruce.custom]]` entry."""
        spec = HookSpec(
            id=hook.id,
            phase=hook.phase,
            tool=hook.command[0] if hook.command else "",
            description=hook.description or " ".join(hook.command),
        )
        return cls(spec=spec, hook=hook)

    def prepare(self, ctx: HookContext) -> Prepared | str:
        if not self.hook.command:
            return "the command is empty"
        program, *rest = self.hook.command
        # `python` means the project's interpreter, as for the built-in tools.
        argv = (str(ctx.env.python) if program in ("python", "python3") else program, *rest)
        argv = (*argv, *ctx.config.hook(self.spec.id).args)
        inputs = select_inputs(ctx, self.spec.id) if self.hook.files else ctx.files.paths
        if self.hook.files:
            inputs = tuple(p for p in inputs if _matches(p, self.hook.files))
        return Prepared(inputs=inputs, identity=(__version__, "custom", *argv))

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        started = time.monotonic()
        files = prepared.inputs if self.hook.pass_filenames and self.hook.files else ()
        argv = [*prepared.identity[2:], *files]
        try:
            result = await run_process(argv, cwd=ctx.project, timeout=timeout, env=tool_env())
        except FileNotFoundError:
            return HookResult(status="error", reason=f"command not found: {argv[0]}")
        except OSError as exc:  # not executable, argument list too long…
            return HookResult(status="error", reason=f"cannot run {argv[0]}: {exc.strerror}")
        duration = time.monotonic() - started
        if result.timed_out:
            return HookResult(
                status="timeout",
                reason=f"timed out after {timeout:g}s",
                duration=duration,
                output_tail=combined_output(result),
            )
        failed = result.exit_code != 0
        return HookResult(
            status="failed" if failed else "passed",
            exit_code=result.exit_code,
            reason=output_tail(result) if failed else None,
            duration=duration,
            output_tail=combined_output(result),
        )


def _matches(path: str, globs: tuple[str, ...]) -> bool:
    from spruce.workflow.files import matches_any

    return matches_any(path, globs)
