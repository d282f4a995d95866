"""`--format text`: the human summary, per phase and per hook with durations, then findings as
`path:line:col code message`, ending with a closing line like
`5 hooks: 4 passed, 1 failed in 5.15s`.

The findings listed are capped per hook (and in all), each cut list ending with `… and N more`:
the full lists are the business of the machine formats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, Final

from spruce.report.reason import readable_reason

# Findings listed per hook, and in all, in the text summary; the rest are counted.
FINDINGS_PER_HOOK: Final = 20
FINDINGS_IN_ALL: Final = 200

# The order hook statuses are counted in on the closing line, and how each reads there.
_COUNTED: Final = (
    ("passed", "passed", "passed"),
    ("failed", "failed", "failed"),
    ("fixed", "fixed", "fixed"),
    ("skipped", "skipped", "skipped"),
    ("error", "error", "errors"),
    ("timeout", "timed out", "timed out"),
    ("running", "running", "running"),
)


def render_text(result: dict[str, Any]) -> str:
    """The whole summary, ending with a newline."""
    lines = [_header(result)]
    names = [p["name"] for p in result["phases"]]
    names += ["  " + h["id"] for p in result["phases"] for h in p["hooks"]]
    width = max((len(name) for name in names), default=0) + 2
    budget = _Budget()
    for phase in result["phases"]:
        lines.append(_row(phase["name"], phase["status"], phase["duration"], "", width))
        for hook in phase["hooks"]:
            lines.append(
                _row("  " + hook["id"], hook["status"], hook["duration"], _note(hook), width)
            )
            lines.extend("    " + line for line in budget.listing(hook))
    tests = result["tests"]
    ran_tests = any(p["name"] == "tests" and p["status"] != "skipped" for p in result["phases"])
    if tests["total"] or ran_tests:
        lines.append(tests_line(tests))
        lines.extend(f"  {line}" for line in selection_lines(tests))
    lines.append(closing_line(result))
    return "\n".join(lines) + "\n"


def selection_lines(tests: dict[str, Any]) -> list[str]:
    """What test selection did: ["412 of 2,459 tests run; 2,047 carried from job k3x9"], or why
    the whole suite ran (["all 2,459 tests run: conftest.py … changed"]); none without selection
    (--no-cache)."""
    return [str(tests["selection"])] if tests.get("selection") else []


def render_findings(result: dict[str, Any]) -> str:
    """Only the findings, grouped under their hook and capped like the summary's; empty when
    there are none."""
    lines: list[str] = []
    budget = _Budget()
    for phase in result["phases"]:
        for hook in phase["hooks"]:
            if findings_total(hook):
                lines.append(f"{phase['name']}/{hook['id']}: {_count(findings_total(hook))}")
                lines.extend("  " + line for line in budget.listing(hook))
    return "\n".join(lines) + "\n" if lines else ""


def findings_total(hook: dict[str, Any]) -> int:
    """How many findings the tool reported (documents without the field: those listed)."""
    return max(int(hook.get("findings_total") or 0), len(hook["findings"]))


def more_line(hook: dict[str, Any], shown: int) -> str | None:
    """`… and N more` for a hook of which `shown` findings were listed; None when none hides."""
    hidden = findings_total(hook) - shown
    return f"… and {hidden} more" if hidden > 0 else None


class _Budget:
    """How many findings the text may still list: per hook, and in all."""

    def __init__(self) -> None:
        self.left = FINDINGS_IN_ALL

    def listing(self, hook: dict[str, Any]) -> Iterator[str]:
        shown = hook["findings"][: min(FINDINGS_PER_HOOK, self.left)]
        self.left -= len(shown)
        yield from (format_finding(finding) for finding in shown)
        more = more_line(hook, len(shown))
        if more is not None:
            yield more


def format_finding(finding: dict[str, Any]) -> str:
    """`path:line:col code message`, leaving out the parts the tool did not give."""
    place = finding["path"] or "?"
    if finding["line"] is not None:
        place += f":{finding['line']}"
        if finding["column"] is not None:
            place += f":{finding['column']}"
    return " ".join(
        part for part in (place, finding["code"], _first_line(finding["message"])) if part
    )


def tests_line(tests: dict[str, Any]) -> str:
    """`tests: 3 passed, 1 failed, 0 skipped, 0 errors of 4`, with xfailed and xpassed when
    there are any, and the modules that could not be collected (not counted as tests)."""
    collection_errors = int(tests.get("collection_errors") or 0)
    parts = [
        f"{tests['passed']} passed",
        f"{tests['failed']} failed",
        f"{tests['skipped']} skipped",
        *(f"{tests[key]} {key}" for key in ("xfailed", "xpassed") if tests.get(key)),
        f"{tests['errors'] - collection_errors} errors",
    ]
    text = f"tests: {', '.join(parts)} of {tests['total']}"
    if collection_errors:
        modules = "module" if collection_errors == 1 else "modules"
        text += f"; {collection_errors} {modules} could not be collected"
    return text


def closing_line(result: dict[str, Any]) -> str:
    """Hooks counted by status and the job's duration: `5 hooks: 4 passed, 1 failed in 5.15s`."""
    counts = Counter(h["status"] for p in result["phases"] for h in p["hooks"])
    parts = [
        f"{counts[status]} {plural if counts[status] > 1 else singular}"
        for status, singular, plural in _COUNTED
        if counts[status]
    ]
    total = sum(counts.values())
    hooks = f"{total} hook{'s' if total != 1 else ''}: {', '.join(parts)}" if total else ""
    text = f"{hooks or 'no hooks ran'} in {result['duration']:.2f}s"
    if result["status"] not in ("passed", "failed"):
        text += f" ({result['status']})"
    return text


def format_duration(seconds: float) -> str:
    """Seconds with two decimals: `0.03s`."""
    return f"{seconds:.2f}s"


def _header(result: dict[str, Any]) -> str:
    workflow = result["workflow"] or "workflow"
    where = f", {result['project']}" if result["project"] else ""
    return f"spruce {workflow}: {result['status']} (job {result['job_id']}{where})"


def _row(name: str, status: str, duration: float, note: str, width: int) -> str:
    row = f"{name:<{width}}{status:<10}{format_duration(duration):>8}"
    return f"{row}  {note}" if note else row


def _note(hook: dict[str, Any]) -> str:
    notes = []
    if findings_total(hook):
        notes.append(_count(findings_total(hook)))
    if hook["cached"]:
        notes.append("cached")
    if hook["reason"]:
        notes.append(readable_reason(hook["reason"]))
    return ", ".join(notes)


def _count(findings: int) -> str:
    return f"{findings} finding{'s' if findings != 1 else ''}"


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    if not lines:
        return ""
    return lines[0] + (" …" if len(lines) > 1 else "")
