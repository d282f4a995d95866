"""Cutting a tool's file list: into batches that fit one command line, into chunks that run on
idle CPU slots, and merging the results of the parts back into the one result of the hook.

A whole-program tool (mypy, vulture) cannot be cut; when its files overflow the command line it
is started through `LAUNCHER`, which reads its arguments from a file inside the tool's process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Final

from spruce.hooks.base import HookResult, bounded_tail

# Linux counts each argument's bytes, its NUL and its pointer against ARG_MAX, environment too.
_POINTER: Final = 8
_MARGIN: Final = 64 * 1024
_FALLBACK_ARG_MAX: Final = 128 * 1024
_MAX_LINE: Final = 1024 * 1024  # even where ARG_MAX is larger, longer lines buy nothing
ARGS_FROM: Final = "--spruce-args-from"
# `python -c LAUNCHER MODULE ARGS…` or `python -c LAUNCHER MODULE --spruce-args-from FILE`:
# runs MODULE as `python -m MODULE` would, with its arguments read from a NUL-separated file.
LAUNCHER: Final = f"""\
import runpy, sys
_module, _args = sys.argv[1], sys.argv[2:]
if _args[:1] == [{ARGS_FROM!r}]:
    with open(_args[1], encoding="utf-8") as _file:
        _args = _file.read().split("\\0")
sys.argv = [_module, *_args]
runpy.run_module(_module, run_name="__main__", alter_sys=True)
"""
# Worst first: a merged result takes the status of its worst part.
_RANK: Final = {"timeout": 5, "error": 4, "failed": 3, "fixed": 2, "passed": 1, "skipped": 0}


def arg_bytes(args: Sequence[str]) -> int:
    """What `args` cost against the system's argument limit."""
    return sum(len(os.fsencode(arg)) + 1 + _POINTER for arg in args)


def line_budget(env: dict[str, str] | None = None) -> int:
    """The bytes of arguments one command line may carry next to `env`."""
    try:
        limit = os.sysconf("SC_ARG_MAX")
    except (AttributeError, ValueError, OSError):
        limit = _FALLBACK_ARG_MAX
    if limit <= 0:
        limit = _FALLBACK_ARG_MAX
    environ = os.environ if env is None else env
    used = arg_bytes([f"{key}={value}" for key, value in environ.items()])
    return max(min(limit, _MAX_LINE) - used - _MARGIN, 4096)


def fit_batches(files: Sequence[str], *, room: int) -> list[tuple[str, ...]]:
    """`files` cut, in order, into runs whose arguments each fit in `room` bytes."""
    batches: list[tuple[str, ...]] = []
    current: list[str] = []
    used = 0
    for path in files:
        cost = arg_bytes([path])
        if current and used + cost > room:
            batches.append(tuple(current))
            current, used = [], 0
        current.append(path)
        used += cost
    if current:
        batches.append(tuple(current))
    return batches


def balanced_chunks(
    files: Sequence[str], *, size: Callable[[str], int], count: int
) -> list[tuple[str, ...]]:
    """`files` dealt into at most `count` chunks of about equal bytes (largest file first to the
    lightest chunk); each chunk keeps the files' order."""
    if count <= 1 or len(files) <= 1:
        return [tuple(files)]
    loads = [0] * min(count, len(files))
    members: list[list[int]] = [[] for _ in loads]
    weights = [max(size(path), 1) for path in files]
    for index in sorted(range(len(files)), key=lambda i: -weights[i]):
        lightest = loads.index(min(loads))
        loads[lightest] += weights[index]
        members[lightest].append(index)
    return [tuple(files[i] for i in sorted(chunk)) for chunk in members if chunk]


def merge_results(
    parts: Sequence[HookResult], *, duration: float, order: Sequence[str] = ()
) -> HookResult:
    """One hook result from the results of its parts: the worst status (with its exit code and
    reason), every finding and changed file. Findings are put in the order of their files in
    `order` (the whole input), as one run of a tool that reports file by file lists them."""
    if len(parts) == 1:
        return parts[0]
    findings = [finding for part in parts for finding in part.findings]
    if order:
        position = {path: index for index, path in enumerate(order)}
        findings.sort(key=lambda finding: position.get(finding.path, len(position)))
    worst = max(parts, key=lambda part: _RANK[part.status])
    reason = next(
        (part.reason for part in parts if part.status == worst.status and part.reason), None
    )
    changed = dict.fromkeys(path for part in parts for path in part.changed_files)
    return HookResult(
        status=worst.status,
        exit_code=worst.exit_code,
        findings=tuple(findings),
        reported=sum(part.findings_total for part in parts),
        reason=reason,
        changed_files=tuple(changed),
        duration=duration,
        output_tail=bounded_tail("\n".join(part.output_tail for part in parts if part.output_tail)),
    )
