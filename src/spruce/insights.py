"""Performance insights (`spruce.stats/1`): where a project's time goes over its last N jobs.

Computed from the event log alone, so every backend answers the same: each finished job's
events fold into a small `JobSummary`, and the summaries into per-phase and per-hook duration
percentiles and trends, queued time, cache hit and failure rates, the slowest and the flaky tests.
"""

from __future__ import annotations

import math
import statistics
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio
import msgspec

from spruce.events import HOOK_END_EVENTS, PHASE_END_EVENTS, Event, WorkflowEvent
from spruce.store.base import EventLog, JobRecord

if TYPE_CHECKING:
    from spruce.insights_cache import SummaryCache

STATS_SCHEMA: Final = "spruce.stats/1"
DEFAULT_JOBS: Final = 50
MAX_JOBS: Final = 10_000
TOP_TESTS: Final = 20  # slowest tests listed
_FAILING: Final = frozenset({"failed", "error", "timeout"})
_TEST_FAILING: Final = frozenset({"failed", "error"})
_PHASE_ORDER: Final = ("config", "fast_hooks", "code_cleaning", "comprehensive_hooks", "tests")


class HookRun(msgspec.Struct, array_like=True, frozen=True):
    """One hook's end in one job."""

    id: str
    phase: str
    status: str
    duration: float
    queued: float
    cached: bool


class JobSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What the insights need of one finished job, folded from its events."""

    job_id: str
    project: str | None
    started_at: float
    phases: dict[str, float]  # phases that ran (not skipped): their durations
    hooks: list[HookRun]
    # The tests that ran (none when the suite was answered from the cache: a replay is no new
    # observation): their ids joined by newlines and their durations as packed doubles, which
    # decode many times faster than lists of objects (most of a summary is its tests).
    test_ids: str
    test_durations: bytes
    test_failed: list[str]  # the ids of those that failed or errored
    test_other: list[str]  # the ids of those neither passed nor failed (skipped, xfailed…)
    inputs: str | None  # what the suite saw (test_phase_started's `inputs`), if published


def summarize(record: JobRecord, events: Iterable[Event]) -> JobSummary:
    """Fold one job's events, in seq order, into its summary."""
    phases: dict[str, float] = {}
    hooks: list[HookRun] = []
    ids: list[str] = []
    durations: list[float] = []
    test_failed: list[str] = []
    test_other: list[str] = []
    inputs: str | None = None
    tests_cached = False
    for event in events:
        kind, data = event.event, event.data
        if kind is WorkflowEvent.TEST_CASE_COMPLETED:
            nodeid = str(data.get("nodeid") or "").replace("\n", " ")  # ids are joined by "\n"
            ids.append(nodeid)
            durations.append(_seconds(data.get("duration")))
            outcome = data.get("outcome")
            if outcome in _TEST_FAILING:
                test_failed.append(nodeid)
            elif outcome != "passed":
                test_other.append(nodeid)
        elif kind in HOOK_END_EVENTS:
            run = HookRun(
                id=str(data.get("hook") or ""),
                phase=str(data.get("phase") or ""),
                status=str(data.get("status") or ""),
                duration=_seconds(data.get("duration")),
                queued=_seconds(data.get("queued")),
                cached=bool(data.get("cached")),
            )
            hooks.append(run)
            tests_cached |= run.phase == "tests" and run.cached
        elif kind in PHASE_END_EVENTS and data.get("status") != "skipped":
            phases[str(data.get("phase") or event.step_id)] = _seconds(data.get("duration"))
        elif kind is WorkflowEvent.TEST_PHASE_STARTED and isinstance(data.get("inputs"), str):
            inputs = data["inputs"]
    return JobSummary(
        job_id=record.job_id,
        project=record.project,
        started_at=record.started_at,
        phases=phases,
        hooks=hooks,
        test_ids="" if tests_cached else "\n".join(ids),
        test_durations=b"" if tests_cached else array("d", durations).tobytes(),
        test_failed=[] if tests_cached else test_failed,
        test_other=[] if tests_cached else test_other,
        inputs=inputs,
    )


def test_ids(summary: JobSummary) -> list[str]:
    """The ids of the tests a summary counts, in the order they ended."""
    return summary.test_ids.split("\n") if summary.test_ids else []


def finished_jobs(
    records: Sequence[JobRecord], *, project: str | None, jobs: int
) -> list[JobRecord]:
    """The newest `jobs` finished jobs (of `project`, or of every project), oldest first."""
    chosen = [
        record
        for record in records
        if record.status != "running" and (project is None or record.project == project)
    ]
    chosen.sort(key=lambda record: record.started_at, reverse=True)
    return chosen[:jobs][::-1]


async def collect_stats(
    log: EventLog,
    *,
    project: str | None = None,
    jobs: int = DEFAULT_JOBS,
    cache: SummaryCache | None = None,
) -> dict[str, Any]:
    """The stats document of the last `jobs` finished jobs of `project` (None: every project);
    `cache` keeps each job's summary, so that its events are read only once."""
    records = finished_jobs(await log.list_jobs(limit=MAX_JOBS), project=project, jobs=jobs)
    known: dict[str, JobSummary] = {}
    if cache is not None:
        known = await anyio.to_thread.run_sync(cache.get_many, log.url, records)
    summaries: list[JobSummary] = []
    fresh: list[tuple[JobRecord, JobSummary]] = []
    for record in records:
        summary = known.get(record.job_id)
        if summary is None:
            summary = summarize(record, await _job_events(log, record))
            fresh.append((record, summary))
        summaries.append(summary)
    if cache is not None and fresh:
        await anyio.to_thread.run_sync(cache.put_many, log.url, fresh)
    return build_stats(summaries, project=project)


async def _job_events(log: EventLog, record: JobRecord) -> list[Event]:
    """Every stored event of a job (from its first kept seq: gc may have trimmed the oldest)."""
    events: list[Event] = []
    after = record.first_seq - 1
    while page := await log.read(record.job_id, after=events[-1].seq if events else after):
        events.extend(page)
    return events


def build_stats(summaries: Sequence[JobSummary], *, project: str | None) -> dict[str, Any]:
    """The `spruce.stats/1` document of these jobs (oldest first)."""
    return {
        "schema": STATS_SCHEMA,
        "project": project,
        "jobs": len(summaries),
        "phases": _phase_stats(summaries),
        "hooks": _hook_stats(summaries),
        "slowest_tests": _slowest_tests(summaries),
        "flaky_tests": _flaky_tests(summaries),
    }


def _phase_stats(summaries: Sequence[JobSummary]) -> list[dict[str, Any]]:
    durations: dict[str, list[float]] = defaultdict(list)
    for summary in summaries:
        for name, duration in summary.phases.items():
            durations[name].append(duration)
    rank = {name: index for index, name in enumerate(_PHASE_ORDER)}
    return [
        {"name": name, "runs": len(values), **_spread(values)}
        for name, values in sorted(durations.items(), key=lambda kv: rank.get(kv[0], len(rank)))
    ]


def _hook_stats(summaries: Sequence[JobSummary]) -> list[dict[str, Any]]:
    """Per hook, by phase and slowest first: timing of the runs that executed (a cache answer
    takes no time worth timing), queued time, and the share of runs answered from the cache or
    failing. Skips don't count."""
    runs: dict[tuple[str, str], list[HookRun]] = defaultdict(list)
    for summary in summaries:
        for run in summary.hooks:
            if run.status != "skipped":
                runs[(run.phase, run.id)].append(run)
    stats: list[dict[str, Any]] = []
    for (phase, hook_id), hook_runs in runs.items():
        executed = [run.duration for run in hook_runs if not run.cached]
        stats.append(
            {
                "id": hook_id,
                "phase": phase,
                "runs": len(hook_runs),
                **_spread(executed),
                "queued_p50": _percentile(sorted(run.queued for run in hook_runs), 0.5),
                "cache_hit_rate": _rate(sum(run.cached for run in hook_runs), len(hook_runs)),
                "failure_rate": _rate(
                    sum(run.status in _FAILING for run in hook_runs), len(hook_runs)
                ),
            }
        )
    rank = {name: index for index, name in enumerate(_PHASE_ORDER)}
    # By phase, the slowest first: where a phase's time goes reads from the top.
    stats.sort(
        key=lambda hook: (rank.get(hook["phase"], len(rank)), -(hook["p50"] or 0.0), hook["id"])
    )
    return stats


def _slowest_tests(summaries: Sequence[JobSummary]) -> list[dict[str, Any]]:
    durations: dict[str, list[float]] = defaultdict(list)
    for summary in summaries:
        for nodeid, duration in zip(
            test_ids(summary), array("d", summary.test_durations), strict=True
        ):
            durations[nodeid].append(duration)
    p50s = {nodeid: statistics.median(values) for nodeid, values in durations.items()}
    slowest = sorted(p50s, key=lambda nodeid: (-p50s[nodeid], nodeid))[:TOP_TESTS]
    return [
        {
            "nodeid": nodeid,
            "runs": len(durations[nodeid]),
            "p50": _round(p50s[nodeid]),
            "max": _round(max(durations[nodeid])),
        }
        for nodeid in slowest
    ]


def _flaky_tests(summaries: Sequence[JobSummary]) -> list[dict[str, Any]]:
    """Tests that passed and failed on the same inputs (a job without the suite's input
    fingerprint cannot say it saw the same inputs, so it is left out)."""
    failed: dict[tuple[str, str], list[str]] = defaultdict(list)  # -> the jobs, oldest first
    for summary in summaries:
        if summary.inputs is not None:
            for nodeid in summary.test_failed:
                failed[(nodeid, summary.inputs)].append(summary.job_id)
    suspects = {nodeid for nodeid, _inputs in failed}
    passed: dict[tuple[str, str], int] = defaultdict(int)
    for summary in summaries:
        if summary.inputs is not None and suspects:
            not_passed = {*summary.test_failed, *summary.test_other}
            for nodeid in suspects.intersection(test_ids(summary)) - not_passed:
                passed[(nodeid, summary.inputs)] += 1
    order = {summary.job_id: index for index, summary in enumerate(summaries)}
    flaky: dict[str, dict[str, Any]] = {}
    for key, jobs in failed.items():
        if passed[key]:
            entry = flaky.setdefault(
                key[0], {"nodeid": key[0], "passed": 0, "failed": 0, "last_job": None}
            )
            entry["passed"] += passed[key]
            entry["failed"] += len(jobs)
            if entry["last_job"] is None or order[jobs[-1]] > order[entry["last_job"]]:
                entry["last_job"] = jobs[-1]  # the newest job where it failed
    return sorted(flaky.values(), key=lambda entry: (-entry["failed"], entry["nodeid"]))


def _spread(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and trend of durations given oldest first."""
    ordered = sorted(values)
    return {
        "p50": _percentile(ordered, 0.5),
        "p95": _percentile(ordered, 0.95),
        "trend": trend(values),
    }


def trend(values: Sequence[float]) -> float | None:
    """Median of the newer half over median of the older half; None with fewer than 4 runs
    (or an older median of zero)."""
    if len(values) < 4:
        return None
    half = len(values) // 2
    older = statistics.median(values[:half])
    newer = statistics.median(values[-half:])
    return _round(newer / older) if older > 0 else None


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    """The q-quantile of sorted values, interpolated between the nearest ranks."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return _round(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _rate(count: int, total: int) -> float | None:
    return _round(count / total) if total else None


def _round(value: float) -> float:
    return round(value, 4)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)
