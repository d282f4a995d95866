"""/metrics: the bus counters, jobs by status, phase and hook durations, WebSocket clients, as
Prometheus text (exposition format 0.0.4); every name starts with `spruce_`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from spruce.bus import WorkflowEventBus
    from spruce.server.api import JobControl
    from spruce.server.bridge import BridgeStats
    from spruce.store.base import EventLog
    from spruce.subscribers.metrics import DurationStat, MetricsCollector

_JOB_STATUSES: Final = ("running", "passed", "failed", "error", "cancelled")
_JOBS_SCANNED: Final = 1000
# (name after spruce_bus_, type, help); the BusStats field is the name without _total
_BUS: Final = (
    ("published_total", "counter", "Events published in this process."),
    ("ingested_total", "counter", "Events of other processes read from the event log."),
    ("delivered_total", "counter", "Handler calls that succeeded."),
    ("dropped_total", "counter", "Events subscribers lost by falling behind the ring."),
    ("handler_errors_total", "counter", "Handler calls that raised."),
    ("handler_timeouts_total", "counter", "Handler calls that timed out."),
    ("log_errors_total", "counter", "Events the event log refused."),
    ("subscribers", "gauge", "Subscribers attached to the bus."),
    ("queue_depth", "gauge", "Events waiting for the slowest subscriber."),
)
# (name after spruce_ws_, type, help, BridgeStats field)
_BRIDGE: Final = (
    ("connections_total", "counter", "Progress sockets served.", "connections"),
    (
        "rejected_total",
        "counter",
        "Sockets refused at the connection limit (1013).",
        "rejected_full",
    ),
    (
        "slow_consumer_closes_total",
        "counter",
        "Sockets closed 4008 (slow consumer).",
        "slow_consumer_closes",
    ),
    ("events_routed_total", "counter", "Events routed to job sockets.", "routed"),
    ("queued", "gauge", "Events waiting in client queues.", "queued"),
)


class _Text:
    """Accumulates metric families: one HELP and TYPE line each, then the samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        if labels:
            pairs = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            self.lines.append(f"{name}{{{pairs}}} {text}")
        else:
            self.lines.append(f"{name} {text}")

    def simple(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text)
        self.sample(name, value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


async def render_metrics(
    bus: WorkflowEventBus,
    log: EventLog,
    collector: MetricsCollector,
    bridge: BridgeStats,
    runner: JobControl | None,
) -> str:
    """The whole /metrics page."""
    out = _Text()
    stats = bus.stats()
    for attr, kind, help_text in _BUS:
        out.simple(
            f"spruce_bus_{attr}", kind, help_text, getattr(stats, attr.removesuffix("_total"))
        )

    jobs = Counter(record.status for record in await log.list_jobs(limit=_JOBS_SCANNED))
    out.family("spruce_jobs", "gauge", "Jobs in the event log by status (newest 1000).")
    for status in _JOB_STATUSES:
        out.sample("spruce_jobs", jobs.get(status, 0), {"status": status})
    running_here = len(runner.running()) if runner is not None else 0
    out.simple("spruce_jobs_running_here", "gauge", "Jobs this server runs now.", running_here)
    out.family("spruce_jobs_ended_total", "counter", "Jobs ended since this server started.")
    for status, count in sorted(collector.jobs_ended.items()):
        out.sample("spruce_jobs_ended_total", count, {"status": status})
    out.family("spruce_events_total", "counter", "Events seen since this server started.")
    for event, count in sorted(collector.events.items()):
        out.sample("spruce_events_total", count, {"event": event})
    out.family("spruce_test_cases_total", "counter", "Test cases reported, by outcome.")
    for outcome, count in sorted(collector.test_cases.items()):
        out.sample("spruce_test_cases_total", count, {"outcome": outcome})
    _durations(out, "spruce_phase_duration_seconds", "phase", collector.phases.items())
    _durations(out, "spruce_hook_duration_seconds", "hook", collector.hooks.items())

    out.family("spruce_ws_clients", "gauge", "Connected progress WebSocket clients.")
    out.sample("spruce_ws_clients", bridge.job_clients, {"stream": "job"})
    out.sample("spruce_ws_clients", bridge.firehose_clients, {"stream": "all"})
    for name, kind, help_text, attr in _BRIDGE:
        out.simple(f"spruce_ws_{name}", kind, help_text, getattr(bridge, attr))
    return "\n".join(out.lines) + "\n"


def _durations(
    out: _Text, name: str, label: str, stats: Iterable[tuple[tuple[str, str], DurationStat]]
) -> None:
    out.family(name, "summary", f"Seconds per {label}, by {label} and status.")
    for (unit, status), stat in sorted(stats, key=lambda pair: pair[0]):
        labels = {label: unit, "status": status}
        out.sample(f"{name}_sum", round(stat.total, 6), labels)
        out.sample(f"{name}_count", stat.count, labels)
