"""How far a job has come, counted from its events: hooks done of planned, tests done of collected.

MCP progress notifications carry one number that must grow; hooks and tests add up to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from spruce.events import HOOK_END_EVENTS, Event, WorkflowEvent


@dataclass
class JobProgress:
    """Counters updated one event at a time, in seq order."""

    hooks_total: int | None = None
    hooks_done: int = 0
    tests_total: int | None = None
    tests_done: int = 0
    ended: bool = False

    def update(self, event: Event) -> None:
        """Count one event."""
        kind = event.event
        data = event.data
        if kind is WorkflowEvent.WORKFLOW_SESSION_READY:
            self.hooks_total = _count(data.get("hooks_total"))
        elif kind in HOOK_END_EVENTS:
            self.hooks_done += 1
        elif kind is WorkflowEvent.TEST_PHASE_STARTED:
            self.tests_total = _count(data.get("total"))
        elif kind is WorkflowEvent.TEST_CASE_COMPLETED:
            self.tests_done = max(self.tests_done + 1, _count(data.get("done")) or 0)
            self.tests_total = _count(data.get("total")) or self.tests_total
        elif event.is_end:
            self.ended = True

    @property
    def done(self) -> int:
        """Units finished so far: hooks plus test cases."""
        return self.hooks_done + self.tests_done

    @property
    def total(self) -> int | None:
        """Units planned, once known; None while the count is unknown or already exceeded."""
        if self.hooks_total is None:
            return None
        total = self.hooks_total + (self.tests_total or 0)
        return total if total >= self.done else None

    @property
    def message(self) -> str:
        """A line for humans: `hooks 3/13, tests 12/40`."""
        hooks = f"hooks {self.hooks_done}/{_or_unknown(self.hooks_total)}"
        if self.tests_total is None and not self.tests_done:
            return hooks
        return f"{hooks}, tests {self.tests_done}/{_or_unknown(self.tests_total)}"


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _or_unknown(value: int | None) -> str:
    return "?" if value is None else str(value)
