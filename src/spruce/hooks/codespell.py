"""codespell: misspellings in any text file (fast_hooks); exit 65 means findings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from spruce.hooks.base import Finding, relative
from spruce.hooks.tool import ToolHook
from spruce.workflow.definitions import HOOKS_BY_ID
from spruce.workflow.process import ProcessResult

# About half a second of codespell's work: less would cost more in start-up than it saves.
CHUNK_BYTES: Final = 2 * 1024 * 1024
_LINE: Final = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<word>.+?) ==> (?P<fix>.+)$")


def parse_codespell(result: ProcessResult, project: Path) -> list[Finding]:
    """`path:line: wrod ==> word` lines."""
    findings = []
    for line in result.stdout.splitlines():
        match = _LINE.match(line.strip())
        if match:
            findings.append(
                Finding(
                    path=relative(project, match["path"]),
                    line=int(match["line"]),
                    column=1,
                    code="misspelling",
                    message=f"{match['word']} ==> {match['fix']}",
                    severity="warning",
                    tool="codespell",
                )
            )
    return findings


def codespell_hooks() -> dict[str, ToolHook]:
    """The codespell hook."""
    return {
        "codespell": ToolHook(
            spec=HOOKS_BY_ID["codespell"],
            args=(),
            suffixes=(),
            exclude=("*.lock", "*.svg", "*.min.js", "*.png", "*.jpg", "*.gif", "*.ico"),
            findings_exit=frozenset({65}),
            parse=parse_codespell,
            splittable=True,
            chunk_bytes=CHUNK_BYTES,
        )
    }
