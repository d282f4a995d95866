"""What MCP answers fit in an agent's context: a bounded summary of a result document, and
every stored finding of a job a page at a time.

The summary keeps the shape of the result document (statuses, durations, counts, each hook's
`findings_total`), but lists only the first findings of each hook and the failed test cases
without their tracebacks; `get_findings` pages through the rest.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from spruce.events import Event, WorkflowEvent

FIRST_FINDINGS: Final = 5  # findings of each hook a summary lists
SUMMARY_CASES: Final = 100  # failed test cases a summary lists (the counts stay exact)
_MESSAGE_CHARS: Final = 300
_HOOK_ENDS: Final = frozenset(
    {WorkflowEvent.HOOK_COMPLETED, WorkflowEvent.HOOK_FAILED, WorkflowEvent.HOOK_SKIPPED}
)


def summarize(document: dict[str, Any]) -> dict[str, Any]:
    """The document with each hook's first findings and the failed cases without tracebacks,
    marked `detail: "summary"`; `findings_truncated` then says a hook has more than listed."""
    phases = [
        {**phase, "hooks": [_hook_summary(hook) for hook in phase["hooks"]]}
        for phase in document["phases"]
    ]
    tests = dict(document["tests"])
    tests["cases"] = [
        {**case, "message": _short(case["message"]), "longrepr": None}
        for case in tests["cases"][:SUMMARY_CASES]
    ]
    tests.pop("all_cases", None)
    return {**document, "phases": phases, "tests": tests, "detail": "summary"}


def _hook_summary(hook: dict[str, Any]) -> dict[str, Any]:
    findings = [
        {**finding, "message": _short(finding["message"])}
        for finding in hook["findings"][:FIRST_FINDINGS]
    ]
    total = max(int(hook.get("findings_total") or 0), len(hook["findings"]))
    return {**hook, "findings": findings, "findings_truncated": len(findings) < total}


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= _MESSAGE_CHARS:
        return text
    return text[: _MESSAGE_CHARS - 1] + "…"


class PagedFinding(msgspec.Struct, frozen=True, kw_only=True):
    """One stored finding, with its place in the job's sequence of findings."""

    index: int  # 1, 2, 3…: pass the last one seen as `after` to read on
    phase: str
    hook: str
    path: str
    line: int | None
    column: int | None
    code: str
    message: str
    severity: str
    tool: str


class HookCount(msgspec.Struct, frozen=True, kw_only=True):
    """How many findings a hook reported, and how many of them are stored (and so paged)."""

    phase: str
    hook: str
    reported: int
    stored: int


class FindingsPage(msgspec.Struct, frozen=True, kw_only=True):
    """Findings after a cursor, in the order their hooks ended; `next_cursor` goes in `after`.

    `stored` is how many findings (of the hook asked for, else of every hook) can be paged;
    `reported` how many the tools reported. They differ only when a hook reported more than
    `[tool.spruce] max_findings`: the others were counted but not kept.
    """

    findings: list[PagedFinding]
    next_cursor: int
    stored: int
    reported: int
    hooks: list[HookCount]
    status: str


class FindingsIndex:
    """Every stored finding of one job, in the order of the hook end events (stable while the
    job runs: later hooks only add to the end)."""

    def __init__(self) -> None:
        self.last_seq = 0
        self._rows: list[tuple[str, str, dict[str, Any]]] = []
        self._hooks: list[HookCount] = []

    def add(self, event: Event) -> None:
        """Take in the job's next event (seq order; those at or below `last_seq` are ignored)."""
        if event.seq <= self.last_seq:
            return
        self.last_seq = event.seq
        if event.event not in _HOOK_ENDS:
            return
        data = event.data
        phase, hook = str(data.get("phase") or ""), str(data.get("hook") or "")
        details = [d for d in data.get("details") or () if isinstance(d, dict)]
        reported = data.get("findings_total", data.get("findings"))
        stored = len(details)
        total = max(reported if isinstance(reported, int) else 0, stored)
        self._hooks.append(HookCount(phase=phase, hook=hook, reported=total, stored=stored))
        self._rows.extend((phase, hook, detail) for detail in details)

    def page(self, *, hook: str | None, after: int, limit: int, status: str) -> FindingsPage:
        """Up to `limit` findings with index greater than `after`, of `hook` if given."""
        found: list[PagedFinding] = []
        for index in range(after, len(self._rows)):
            phase, hook_id, raw = self._rows[index]
            if hook is not None and hook_id != hook:
                continue
            if len(found) == limit:
                break
            found.append(_paged(index + 1, phase, hook_id, raw))
        hooks = [h for h in self._hooks if hook is None or h.hook == hook]
        return FindingsPage(
            findings=found,
            next_cursor=found[-1].index if found else max(after, 0),
            stored=sum(h.stored for h in hooks),
            reported=sum(h.reported for h in hooks),
            hooks=hooks,
            status=status,
        )


def _paged(index: int, phase: str, hook: str, raw: dict[str, Any]) -> PagedFinding:
    def number(key: str) -> int | None:
        value = raw.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return PagedFinding(
        index=index,
        phase=phase,
        hook=hook,
        path=str(raw.get("path") or ""),
        line=number("line"),
        column=number("column"),
        code=str(raw.get("code") or ""),
        message=str(raw.get("message") or ""),
        severity=str(raw.get("severity") or "warning"),
        tool=str(raw.get("tool") or ""),
    )
