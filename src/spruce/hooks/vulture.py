"""vulture: dead code in comprehensive_hooks; exit 3 means findings, text output only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from spruce.hooks import vulture_prelude
from spruce.hooks.base import Finding, relative
from spruce.hooks.tool import ToolHook
from spruce.workflow.definitions import HOOKS_BY_ID
from spruce.workflow.process import ProcessResult

_LINE: Final = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+): (?P<message>.+?)(?: \((?P<conf>\d+)% confidence.*\))?$"
)
# Each file's scan is kept per file: an edit re-parses one file, not the project (idna: 1.8 s).
PRELUDE: Final = Path(vulture_prelude.__file__).read_text(encoding="utf-8")
_CODE: Final = re.compile(r"^(unused \w+|unreachable code|unsatisfiable \w+|redundant \w+)")


def parse_vulture(result: ProcessResult, project: Path) -> list[Finding]:
    """`path:line: message (N% confidence)` lines."""
    findings = []
    for line in result.stdout.splitlines():
        match = _LINE.match(line.strip())
        if match is None:
            continue
        message = match["message"]
        kind = _CODE.match(message)
        findings.append(
            Finding(
                path=relative(project, match["path"]),
                line=int(match["line"]),
                column=1,
                code=kind[1].replace(" ", "-") if kind else "dead-code",
                message=f"{message} ({match['conf']}% confidence)" if match["conf"] else message,
                severity="warning",
                tool="vulture",
            )
        )
    return findings


def vulture_hooks() -> dict[str, ToolHook]:
    """The vulture hook; 80 % confidence keeps public functions used elsewhere out of it."""
    return {
        "vulture": ToolHook(
            spec=HOOKS_BY_ID["vulture"],
            args=("--min-confidence", "80"),
            suffixes=(".py",),
            findings_exit=frozenset({3}),
            parse=parse_vulture,
            prelude=PRELUDE,
            keeps_state=True,
        )
    }
