"""mypy: `mypy -O json` (JSON lines, 0-based columns) in comprehensive_hooks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from spruce.hooks.base import Finding, HookContext, relative
from spruce.hooks.tool import ToolHook
from spruce.workflow.definitions import HOOKS_BY_ID
from spruce.workflow.process import ProcessResult


def parse_mypy_json(result: ProcessResult, project: Path) -> list[Finding]:
    """One JSON object per line; notes attached to an error are folded into its message."""
    findings = []
    for line in result.stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        severity: Literal["error", "warning", "info"] = (
            "error" if item.get("severity") == "error" else "info"
        )
        message = str(item.get("message", ""))
        if item.get("hint"):
            message += f" ({item['hint']})"
        findings.append(
            Finding(
                path=relative(project, str(item.get("file", ""))),
                line=max(int(item.get("line") or 1), 1),
                column=max(int(item.get("column") or 0) + 1, 1),
                code=str(item.get("code") or "mypy"),
                message=message,
                severity=severity,
                tool="mypy",
            )
        )
    return findings


def _extra_args(ctx: HookContext, python: Path) -> Sequence[str]:
    # mypy keeps its incremental cache in spruce's cache directory, never in the project: a warm
    # run re-checks only changed modules and their dependents. Without a cache (--no-cache) it
    # goes to the job's scratch directory and is removed with it.
    state = ctx.state or ctx.scratch
    args = ["--cache-dir", str(state / "mypy")]
    # mypy from spruce's environment must still see the project's installed packages.
    if python != ctx.env.python:
        args += ["--python-executable", str(ctx.env.python)]
    return args


def prefer_stubs(inputs: tuple[str, ...]) -> tuple[str, ...]:
    """Drop `x.py` when `x.pyi` is checked too: mypy refuses both as a "duplicate module",
    and reads only the stub anyway (attrs ships its stubs beside its sources)."""
    stubs = {path[:-1] for path in inputs if path.endswith(".pyi")}
    return tuple(path for path in inputs if path not in stubs)


def mypy_hooks() -> dict[str, ToolHook]:
    """The mypy hook."""
    return {
        "mypy": ToolHook(
            spec=HOOKS_BY_ID["mypy"],
            args=("-O", "json", "--no-error-summary", "--no-color-output"),
            parse=parse_mypy_json,
            extra_args=_extra_args,
            narrow=prefer_stubs,
            env_bound=True,
        )
    }
