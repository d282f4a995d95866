"""The in-process checks (whitespace, end of file, TOML/YAML/AST syntax, conflict markers, size)
and the in-process fixers; they read each file through the shared FileSet, so at most once."""

from __future__ import annotations

import ast
import re
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import anyio

from spruce import __version__
from spruce.hooks.base import Finding, HookContext, HookResult, Prepared, select_inputs
from spruce.workflow.definitions import FIXERS, HOOKS_BY_ID, HookSpec

Check = Callable[[str, bytes, HookContext], Iterator[Finding]]
_CONFLICT: Final = re.compile(rb"^(<<<<<<< |=======\r?$|>>>>>>> )", re.MULTILINE)
_CONFLICT_START: Final = re.compile(rb"^<<<<<<< ", re.MULTILINE)
_TRAILING: Final = re.compile(rb"[ \t]+(?=\r?$)", re.MULTILINE)


def _finding(hook_id: str, path: str, line: int, message: str, column: int = 1) -> Finding:
    return Finding(
        path=path,
        line=max(line, 1),
        column=max(column, 1),
        code=hook_id,
        message=message,
        severity="error",
        tool="spruce",
    )


def _is_text(data: bytes) -> bool:
    return b"\0" not in data[:8192]


def _trailing_whitespace(path: str, data: bytes, ctx: HookContext) -> Iterator[Finding]:
    if not _is_text(data):
        return
    for match in _TRAILING.finditer(data):
        line = data.count(b"\n", 0, match.start()) + 1
        column = match.start() - (data.rfind(b"\n", 0, match.start()) + 1) + 1
        yield _finding("trailing-whitespace", path, line, "trailing whitespace", column)


def _end_of_file(path: str, data: bytes, ctx: HookContext) -> Iterator[Finding]:
    if not data or not _is_text(data):
        return
    lines = data.count(b"\n") + 1
    if not data.endswith(b"\n"):
        yield _finding("end-of-file", path, lines, "no newline at end of file")
    elif data.endswith(b"\n\n") or data.endswith(b"\r\n\r\n"):
        yield _finding("end-of-file", path, lines - 1, "blank lines at end of file")


def _check_toml(path: str, data: bytes, ctx: HookContext) -> Iterator[Finding]:
    try:
        tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        yield _finding("check-toml", path, 1, "not UTF-8")
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+), column (\d+)", str(exc))
        line, column = (int(match[1]), int(match[2])) if match else (data.count(b"\n") or 1, 1)
        yield _finding("check-toml", path, line, f"invalid TOML: {exc}", column)


def _check_yaml(path: str, data: bytes, ctx: HookContext) -> Iterator[Finding]:
    import yaml  # type: ignore[import-untyped]  # optional: check-yaml is skipped without it

    try:
        for _ in yaml.safe_load_all(data):
            pass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        yield _finding("check-yaml", path, line, f"invalid YAML: {exc.problem}", column)
    except yaml.YAMLError as exc:
        yield _finding("check-yaml", path, 1, f"invalid YAML: {exc}")


def _check_ast(path: str, data: bytes, ctx: HookContext) -> Iterator[Finding]:
    try:
        ast.parse(data, filename=path)
    except SyntaxError as exc:
        yield _finding(
            "check-ast", path, exc.lineno or 1, f"syntax error: {exc.msg}", exc.offset or 1
        )
    except ValueError as exc:  # null bytes
        yield _finding("check-ast", path, 1, f"cannot parse: {exc}")


def _merge_conflict(path: str, data: bytes, ctx: HookContext) -> Iterator[Finding]:
    # A conflict always opens with `<<<<<<< `; without it a bare `=======` is a reST underline.
    if not _is_text(data) or _CONFLICT_START.search(data) is None:
        return
    for match in _CONFLICT.finditer(data):
        line = data.count(b"\n", 0, match.start()) + 1
        yield _finding("merge-conflict", path, line, "merge conflict marker")


@dataclass(frozen=True, kw_only=True)
class InProcessCheck:
    """A read-only check done inside spruce on each selected file's bytes."""

    spec: HookSpec
    check: Check
    suffixes: tuple[str, ...] = ()

    def prepare(self, ctx: HookContext) -> Prepared | str:
        if self.spec.package is not None and ctx.own.version(self.spec.package) is None:
            return f"{self.spec.package} is not installed: pip install {self.spec.package}"
        inputs = select_inputs(ctx, self.spec.id, suffixes=self.suffixes)
        identity = ("spruce", __version__, self.spec.id, str(ctx.config.large_file_kb))
        return Prepared(inputs=inputs, identity=identity, per_file=True)

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        started = time.monotonic()
        with anyio.fail_after(timeout):
            findings = await anyio.to_thread.run_sync(self._scan, ctx, prepared.inputs)
        return HookResult(
            status="failed" if findings else "passed",
            findings=tuple(findings),
            duration=time.monotonic() - started,
        )

    def _scan(self, ctx: HookContext, inputs: tuple[str, ...]) -> list[Finding]:
        found: list[Finding] = []
        for path in inputs:
            data = ctx.files.read(path)
            if data is not None:
                found.extend(self.check(path, data, ctx))
        return found


@dataclass(frozen=True, kw_only=True)
class LargeFiles:
    """Files over `large_file_kb`, judged by size alone (their bytes are not needed)."""

    spec: HookSpec

    def prepare(self, ctx: HookContext) -> Prepared | str:
        inputs = select_inputs(ctx, self.spec.id)
        identity = ("spruce", __version__, self.spec.id, str(ctx.config.large_file_kb))
        return Prepared(inputs=inputs, identity=identity, per_file=True)

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        started = time.monotonic()
        limit = ctx.config.large_file_kb * 1024
        findings = [
            _finding("large-files", path, 1, f"{size // 1024} KB is over {limit // 1024} KB")
            for path in prepared.inputs
            if (size := ctx.files.size(path)) > limit
        ]
        return HookResult(
            status="failed" if findings else "passed",
            findings=tuple(findings),
            duration=time.monotonic() - started,
        )


def _strip_trailing(data: bytes) -> bytes:
    return _TRAILING.sub(b"", data)


def _fix_end_of_file(data: bytes) -> bytes:
    if not data:
        return data
    stripped = data.rstrip(b"\r\n")
    if not stripped:
        return b""
    newline = b"\r\n" if data.endswith(b"\r\n") else b"\n"
    return stripped + newline


@dataclass(frozen=True, kw_only=True)
class InProcessFixer:
    """A fixer done inside spruce: rewrites text files whose bytes it would change."""

    spec: HookSpec
    fix: Callable[[bytes], bytes]

    def prepare(self, ctx: HookContext) -> Prepared | str:
        inputs = select_inputs(ctx, self.spec.id)
        return Prepared(inputs=inputs, identity=(), cacheable=False)

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        started = time.monotonic()
        with anyio.fail_after(timeout):
            changed = await anyio.to_thread.run_sync(self._rewrite, ctx, prepared.inputs)
        return HookResult(
            status="fixed" if changed else "passed",
            changed_files=tuple(changed),
            duration=time.monotonic() - started,
        )

    def _rewrite(self, ctx: HookContext, inputs: tuple[str, ...]) -> list[str]:
        changed = []
        for path in inputs:
            data = ctx.files.read(path)
            if data is None or not _is_text(data):
                continue
            fixed = self.fix(data)
            if fixed != data:
                (ctx.project / path).write_bytes(fixed)
                changed.append(path)
        ctx.files.refresh(changed)
        return changed


_CHECKS: Final[dict[str, tuple[Check, tuple[str, ...]]]] = {
    "trailing-whitespace": (_trailing_whitespace, ()),
    "end-of-file": (_end_of_file, ()),
    "check-toml": (_check_toml, (".toml",)),
    "check-yaml": (_check_yaml, (".yaml", ".yml")),
    "check-ast": (_check_ast, (".py", ".pyi")),
    "merge-conflict": (_merge_conflict, ()),
}


def builtin_checks() -> dict[str, InProcessCheck | LargeFiles]:
    """The in-process fast hooks by id."""
    hooks: dict[str, InProcessCheck | LargeFiles] = {
        hook_id: InProcessCheck(spec=HOOKS_BY_ID[hook_id], check=check, suffixes=suffixes)
        for hook_id, (check, suffixes) in _CHECKS.items()
    }
    hooks["large-files"] = LargeFiles(spec=HOOKS_BY_ID["large-files"])
    return hooks


def builtin_fixers() -> dict[str, InProcessFixer]:
    """The in-process fixers of the code_cleaning phase by id."""
    specs = {spec.id: spec for spec in FIXERS}
    return {
        "trailing-whitespace": InProcessFixer(
            spec=specs["trailing-whitespace"], fix=_strip_trailing
        ),
        "end-of-file": InProcessFixer(spec=specs["end-of-file"], fix=_fix_end_of_file),
    }
