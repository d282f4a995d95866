"""ruff: `ruff-check` (lint) and `ruff-format` (check mode) in fast_hooks, and their --fix forms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from spruce.hooks.base import Finding, relative
from spruce.hooks.tool import ToolHook
from spruce.workflow.definitions import FIXERS, HOOKS_BY_ID
from spruce.workflow.process import ProcessResult


def parse_ruff_json(result: ProcessResult, project: Path) -> list[Finding]:
    """ruff's `--output-format json`: 1-based rows and columns, absolute file names."""
    try:
        items: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return []
    findings = []
    for item in items:
        location = item.get("location") or {}
        findings.append(
            Finding(
                path=relative(project, str(item.get("filename", ""))),
                line=max(int(location.get("row") or 1), 1),
                column=max(int(location.get("column") or 1), 1),
                code=str(item.get("code") or item.get("name") or "ruff"),
                message=str(item.get("message", "")),
                severity="error",
                tool="ruff",
            )
        )
    return findings


# The files ruff takes by default besides .py and .pyi, from the version that began to.
_NOTEBOOKS: Final = ((".ipynb", "0.6"),)


def ruff_hooks() -> dict[str, ToolHook]:
    """The two read-only ruff hooks of fast_hooks."""
    return {
        "ruff-check": ToolHook(
            spec=HOOKS_BY_ID["ruff-check"],
            args=("check", "--output-format", "json", "--no-fix", "--force-exclude"),
            parse=parse_ruff_json,
            later_suffixes=_NOTEBOOKS,
            splittable=True,  # ruff spreads one run's files over every core itself
        ),
        "ruff-format": ToolHook(
            spec=HOOKS_BY_ID["ruff-format"],
            args=("format", "--check", "--output-format", "json", "--force-exclude"),
            parse=parse_ruff_json,
            # ruff formats the Python blocks of Markdown files too, as `ruff format .` does
            later_suffixes=(*_NOTEBOOKS, (".md", "0.16")),
            # A file ruff cannot parse makes it exit 2, yet it still lists every finding.
            findings_or_error_exit=frozenset({2}),
            splittable=True,
        ),
    }


def ruff_fixers() -> dict[str, ToolHook]:
    """ruff's safe fixes and the formatter, for the code_cleaning phase."""
    specs = {spec.id: spec for spec in FIXERS}
    return {
        "ruff-check": ToolHook(
            spec=specs["ruff-check"],
            args=("check", "--fix", "--exit-zero", "--quiet", "--force-exclude"),
            parse=parse_ruff_json,
            fixer=True,
            splittable=True,
        ),
        "ruff-format": ToolHook(
            spec=specs["ruff-format"],
            args=("format", "--quiet", "--force-exclude"),
            parse=parse_ruff_json,
            fixer=True,
            splittable=True,
        ),
    }
