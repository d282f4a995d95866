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

# About a second of bandit's work per chunk: less would cost more in start-up than it saves.
CHUNK_BYTES: Final = 256 * 1024
# bandit looks, for every node, at every line of its statement for a `# nosec` comment: quadratic
# in a long literal (idna's 240 KB table takes 6 s). A file without any nosec comment cannot
# have one in a statement's lines, so the answer is None without looking; other files still
# get bandit's own search. Results are unchanged.
NOSEC_PRELUDE: Final = """\
try:
    from bandit.core import utils as _utils

    def _fast_nosec(original):
        seen = [None, False]

        def get_nosec(nosec_lines, *args, **kwargs):
            if not isinstance(nosec_lines, dict):  # not the shape this shortcut knows
                return original(nosec_lines, *args, **kwargs)
            if seen[0] is not nosec_lines:
                seen[0] = nosec_lines
                seen[1] = any(tests is not None for tests in nosec_lines.values())
            return original(nosec_lines, *args, **kwargs) if seen[1] else None

        return get_nosec

    _utils.get_nosec = _fast_nosec(_utils.get_nosec)
except (ImportError, AttributeError):
    pass
"""
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
            splittable=True,
            chunk_bytes=CHUNK_BYTES,
            prelude=NOSEC_PRELUDE,
        )
    }
