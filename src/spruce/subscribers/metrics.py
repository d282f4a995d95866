"""A subscriber that counts events and sums phase and hook durations, ready for /metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from spruce.events import HOOK_END_EVENTS, Event, WorkflowEvent


@dataclass
class DurationStat:
    """Count and total seconds of one kind of unit (a phase or a hook) by status."""

    count: int = 0
    total: float = 0.0


@dataclass
class MetricsCollector:
    """Counts per event type, jobs by end status, and durations per phase and per hook."""

    events: Counter[str] = field(default_factory=Counter)
    jobs_ended: Counter[str] = field(default_factory=Counter)
    phases: dict[tuple[str, str], DurationStat] = field(default_factory=dict)
    hooks: dict[tuple[str, str], DurationStat] = field(default_factory=dict)
    test_cases: Counter[str] = field(default_factory=Counter)

    def __call__(self, event: Event) -> None:
        self.events[event.event.value] += 1
        data = event.data
        status = str(data.get("status", ""))
        duration = data.get("duration")
        if event.is_end:
            self.jobs_ended[status or "unknown"] += 1
        elif event.event in HOOK_END_EVENTS:
            self._add(self.hooks, (str(data.get("hook", "?")), status), duration)
        elif event.event is WorkflowEvent.TEST_CASE_COMPLETED:
            self.test_cases[str(data.get("outcome", "unknown"))] += 1
        elif _is_phase_end(event) and isinstance(duration, int | float):
            self._add(self.phases, (str(event.step_id), status), duration)

    @staticmethod
    def _add(
        table: dict[tuple[str, str], DurationStat], key: tuple[str, str], duration: object
    ) -> None:
        stat = table.setdefault(key, DurationStat())
        stat.count += 1
        if isinstance(duration, int | float):
            stat.total += float(duration)


def _is_phase_end(event: Event) -> bool:
    """A phase's own end event (not a strategy's, hook's or test case's)."""
    return (
        event.step_id is not None
        and "/" not in event.step_id
        and event.event.endswith(("_completed", "_failed"))
        and not event.event.startswith("hook_strategy")
    )
