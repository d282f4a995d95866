"""Hooks from a project's `.pre-commit-config.yaml`, with pre-commit's semantics for
files/exclude/types/pass_filenames/always_run/args: `repo: local` hooks run here, hooks of
well-known repositories wrap spruce's built-in hook, any other is skipped with its reason."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from spruce import __version__
from spruce.hooks.base import Finding, Hook, HookContext, HookResult, Prepared
from spruce.hooks.batches import arg_bytes, fit_batches, line_budget, merge_results
from spruce.hooks.tool import output_tail, tool_env
from spruce.workflow.definitions import HookSpec
from spruce.workflow.process import run_process

LANGUAGES: Final = ("system", "python", "script", "pygrep", "fail")


@dataclass(frozen=True, kw_only=True)
class FileFilter:
    """pre-commit's choice of files for a hook: regexes searched in the path, identify tags."""

    files: str = ""
    exclude: str = "^$"
    types: tuple[str, ...] = ("file",)
    types_or: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    top_files: str = ""  # the config's top-level `files` and `exclude`
    top_exclude: str = "^$"

    def select(self, root: Path, paths: Sequence[str]) -> tuple[str, ...]:
        """The paths pre-commit would pass to the hook, in order."""
        includes = [_regex(self.top_files), _regex(self.files)]
        excludes = [_regex(self.top_exclude), _regex(self.exclude)]
        kept = []
        for path in paths:
            if not all(pattern.search(path) for pattern in includes):
                continue
            if any(pattern.search(path) for pattern in excludes):
                continue
            tags = _tags(str(root / path))
            if not tags.issuperset(self.types):
                continue
            if self.types_or and not tags.intersection(self.types_or):
                continue
            if tags.intersection(self.exclude_types):
                continue
            kept.append(path)
        return tuple(kept)


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _tags(path: str) -> frozenset[str]:
    from identify.identify import tags_from_path

    try:
        return frozenset(tags_from_path(path))
    except ValueError:  # vanished since the listing
        return frozenset()


@dataclass(frozen=True, kw_only=True)
class LocalHook:
    """A `repo: local` hook of language system, python, script, pygrep or fail."""

    spec: HookSpec
    language: str
    entry: str
    args: tuple[str, ...]
    filter: FileFilter
    pass_filenames: bool = True
    always_run: bool = False

    @property
    def file_local(self) -> bool:
        """Each file is judged alone when the files are passed (or grepped)."""
        return self.pass_filenames or self.language in ("pygrep", "fail")

    def prepare(self, ctx: HookContext) -> Prepared | str:
        chosen = self.filter.select(ctx.project, ctx.files.paths)
        if not chosen and not self.always_run:
            return "no files to check (pre-commit's files/types filters)"
        # With always_run and nothing chosen, the whole project keys the cache; no file is passed.
        inputs = chosen or ctx.files.paths
        identity = (__version__, "pre-commit", self.language, self.entry, *self.args)
        return Prepared(inputs=inputs, identity=identity)

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        started = time.monotonic()
        files = self.filter.select(ctx.project, prepared.inputs)
        if self.language == "fail":
            return _fail(self, files, time.monotonic() - started)
        if self.language == "pygrep":
            return _pygrep(self, ctx, files, time.monotonic() - started)
        argv = self._argv(ctx)
        if argv is None:
            return HookResult(status="error", reason=f"command not found: {self.entry}")
        passed = files if self.pass_filenames else ()
        env = tool_env()
        batches = fit_batches(passed, room=line_budget(env) - arg_bytes(argv)) if passed else [()]
        parts = []
        for batch in batches:
            left = max(timeout - (time.monotonic() - started), 0.0)
            try:
                result = await run_process([*argv, *batch], cwd=ctx.project, timeout=left, env=env)
            except OSError as exc:
                return HookResult(status="error", reason=f"cannot run {argv[0]}: {exc.strerror}")
            if result.timed_out:
                parts.append(HookResult(status="timeout", reason=f"timed out after {timeout:g}s"))
                break
            failed = result.exit_code != 0
            parts.append(
                HookResult(
                    status="failed" if failed else "passed",
                    exit_code=result.exit_code,
                    reason=output_tail(result) if failed else None,
                    duration=result.duration,
                )
            )
        return merge_results(parts, duration=time.monotonic() - started, order=passed)

    def _argv(self, ctx: HookContext) -> list[str] | None:
        """The entry split as pre-commit does; `script` is relative to the repository, a
        `python` hook's program comes from the project's environment first."""
        program, *rest = shlex.split(self.entry)
        if self.language == "script":
            program = str(ctx.project / program)
        elif self.language == "python":
            venv_bin = ctx.env.python.parent
            local = venv_bin / program
            program = str(local) if local.exists() else (shutil.which(program) or "")
        else:
            program = shutil.which(program, path=os.environ.get("PATH")) or program
        if not program:
            return None
        return [program, *rest, *self.args]


def _fail(hook: LocalHook, files: Sequence[str], duration: float) -> HookResult:
    message = hook.entry.strip()
    findings = tuple(_finding(hook, path, 1, message) for path in files)
    return HookResult(
        status="failed",
        exit_code=1,
        findings=findings,
        reason=None if findings else message,
        duration=duration,
    )


def _pygrep(hook: LocalHook, ctx: HookContext, files: Sequence[str], duration: float) -> HookResult:
    args = set(hook.args)
    flags = re.IGNORECASE if args & {"-i", "--ignore-case"} else 0
    multiline = "--multiline" in args
    negate = "--negate" in args
    pattern = re.compile(hook.entry.encode(), flags | (re.MULTILINE if multiline else 0))
    findings: list[Finding] = []
    for path in files:
        data = ctx.files.read(path)
        if data is None:
            data = (ctx.project / path).read_bytes()
        matches = _matches(pattern, data, multiline=multiline)
        if negate and not matches:
            findings.append(_finding(hook, path, 1, f"no line matches {hook.entry!r}"))
        elif not negate:
            findings.extend(_finding(hook, path, line, text) for line, text in matches)
    return HookResult(
        status="failed" if findings else "passed",
        exit_code=1 if findings else 0,
        findings=tuple(findings),
        duration=duration,
    )


def _matches(pattern: re.Pattern[bytes], data: bytes, *, multiline: bool) -> list[tuple[int, str]]:
    """(line, text) of each match: one per matching line, or per match with --multiline."""
    if multiline:
        return [
            (data.count(b"\n", 0, match.start()) + 1, match.group().decode(errors="replace"))
            for match in pattern.finditer(data)
        ]
    return [
        (number, line.rstrip(b"\r\n").decode(errors="replace"))
        for number, line in enumerate(data.splitlines(keepends=True), start=1)
        if pattern.search(line)
    ]


def _finding(hook: LocalHook, path: str, line: int, message: str) -> Finding:
    return Finding(
        path=path,
        line=line,
        column=1,
        code=hook.spec.id,
        message=message.strip()[:500],
        severity="error",
        tool=hook.language,
    )


@dataclass(frozen=True, kw_only=True)
class FilteredHook:
    """A built-in hook standing in for a well-known repository's hook: its files are the ones
    pre-commit would pass to that hook."""

    inner: Hook
    filter: FileFilter

    @property
    def spec(self) -> HookSpec:
        return self.inner.spec

    @property
    def file_local(self) -> bool:
        from spruce.workflow.scope import is_file_local

        return is_file_local(self.inner)

    def prepare(self, ctx: HookContext) -> Prepared | str:
        prepared = self.inner.prepare(ctx)
        if isinstance(prepared, str):
            return prepared
        chosen = self.filter.select(ctx.project, prepared.inputs)
        return dataclasses.replace(prepared, inputs=chosen)

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        return await self.inner.execute(ctx, prepared, timeout=timeout)


@dataclass(frozen=True, kw_only=True)
class UnavailableHook:
    """A hook spruce does not run (an unknown remote repository, a manual stage…)."""

    spec: HookSpec
    reason: str
    file_local: bool = True

    def prepare(self, ctx: HookContext) -> Prepared | str:
        return self.reason

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        return HookResult(status="skipped", reason=self.reason)
