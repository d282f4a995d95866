"""bandit: the security scan (`-f json`) of comprehensive_hooks; tests are left out by default,
since their `assert` statements are what tests are made of."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final, Literal

from spruce.hooks.base import Finding, relative
from spruce.hooks.tool import ToolHook
from spruce.workflow.definitions import HOOKS_BY_ID
from spruce.workflow.process import ProcessResult

TEST_FILES: Final = ("tests/", "test/", "test_*.py", "*_test.py", "conftest.py")
_SEVERITY: Final[dict[str, Literal["error", "warning", "info"]]] = {
    "HIGH": "error",
    "MEDIUM": "warning",
    "LOW": "info",
}


def parse_bandit_json(result: ProcessResult, project: Path) -> list[Finding]:
    """bandit's JSON report: 1-based lines, 0-based `col_offset`."""
    try:
        report = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        return []
    return [
        Finding(
            path=relative(project, str(item.get("filename", ""))),
            line=max(int(item.get("line_number") or 1), 1),
            column=max(int(item.get("col_offset") or 0) + 1, 1),
            code=str(item.get("test_id", "bandit")),
            message=str(item.get("issue_text", "")),
            severity=_SEVERITY.get(str(item.get("issue_severity")), "warning"),
            tool="bandit",
        )
        for item in report.get("results", [])
    ]


def bandit_hooks() -> dict[str, ToolHook]:
    """The bandit hook."""
    return {
        "bandit": ToolHook(
            spec=HOOKS_BY_ID["bandit"],
            args=("-f", "json", "-q"),
            suffixes=(".py",),
            exclude=TEST_FILES,
            parse=parse_bandit_json,
        )
    }
