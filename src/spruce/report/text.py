"""`--format text`: the human summary, per phase and per hook with durations, then findings as
`path:line:col code message`, ending with a closing line like `4 passed, 1 failed in 5.15s`."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from spruce.report.reason import readable_reason

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
    for phase in result["phases"]:
        lines.append(_row(phase["name"], phase["status"], phase["duration"], "", width))
        for hook in phase["hooks"]:
            lines.append(
                _row("  " + hook["id"], hook["status"], hook["duration"], _note(hook), width)
            )
            lines.extend("    " + format_finding(f) for f in hook["findings"])
    tests = result["tests"]
    ran_tests = any(p["name"] == "tests" and p["status"] != "skipped" for p in result["phases"])
    if tests["total"] or ran_tests:
        lines.append(tests_line(tests))
    lines.append(closing_line(result))
    return "\n".join(lines) + "\n"


def render_findings(result: dict[str, Any]) -> str:
    """Only the findings, grouped under their hook; empty when there are none."""
    lines: list[str] = []
    for phase in result["phases"]:
        for hook in phase["hooks"]:
            if hook["findings"]:
                lines.append(f"{phase['name']}/{hook['id']}: {_count(len(hook['findings']))}")
                lines.extend("  " + format_finding(f) for f in hook["findings"])
    return "\n".join(lines) + "\n" if lines else ""


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
    """`tests: 3 passed, 1 failed, 0 skipped, 0 errors of 4`."""
    return (
        f"tests: {tests['passed']} passed, {tests['failed']} failed, "
        f"{tests['skipped']} skipped, {tests['errors']} errors of {tests['total']}"
    )


def closing_line(result: dict[str, Any]) -> str:
    """Hooks counted by status and the job's duration: `4 passed, 1 failed in 5.15s`."""
    counts = Counter(h["status"] for p in result["phases"] for h in p["hooks"])
    parts = [
        f"{counts[status]} {plural if counts[status] > 1 else singular}"
        for status, singular, plural in _COUNTED
        if counts[status]
    ]
    text = f"{', '.join(parts) or 'no hooks ran'} in {result['duration']:.2f}s"
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
    if hook["findings"]:
        notes.append(_count(len(hook["findings"])))
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
