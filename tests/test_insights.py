"""Insights from the event log: known durations, trends, cache hits, the slowest and the flaky
tests, the same on every backend, and the per-job summary cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from spruce.events import Event
from spruce.insights import build_stats, collect_stats, summarize, trend
from spruce.insights_cache import SummaryCache
from spruce.store import EventLog, open_store
from spruce.store.base import READ_LIMIT, JobRecord
from tests.stats_log import (
    EXPECTED_FLAKY,
    EXPECTED_MYPY,
    EXPECTED_RUFF,
    PROJECT,
    fill_known_log,
    known_job,
)
from tests.store.conftest import BACKENDS, _url_for

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BACKENDS)
async def known_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    """The known log (tests/stats_log.py) on each backend."""
    log = open_store(_url_for(str(request.param), tmp_path, request))
    await log.open()
    try:
        await fill_known_log(log)
        yield log
    finally:
        await log.aclose()


def _hook(stats: dict[str, object], hook_id: str) -> dict[str, object]:
    hooks = stats["hooks"]
    assert isinstance(hooks, list)
    return next(hook for hook in hooks if hook["id"] == hook_id)


async def test_known_durations_give_known_percentiles_trends_and_rates(
    known_log: EventLog,
) -> None:
    stats = await collect_stats(known_log, project=PROJECT, jobs=50)
    assert (stats["schema"], stats["project"], stats["jobs"]) == ("spruce.stats/1", PROJECT, 6)
    assert _hook(stats, "mypy") == EXPECTED_MYPY
    assert _hook(stats, "ruff-check") == EXPECTED_RUFF
    assert "codespell" not in [hook["id"] for hook in stats["hooks"]]  # skipped every time
    phases = {phase["name"]: phase for phase in stats["phases"]}
    assert list(phases) == ["fast_hooks", "tests"]  # a skipped phase did not run
    assert phases["fast_hooks"] == {
        "name": "fast_hooks",
        "runs": 6,
        "p50": 3.5,
        "p95": 5.75,
        "trend": 2.5,  # median(4, 5, 6) / median(1, 2, 3)
    }


async def test_the_planted_flaky_test_is_found_and_the_fixed_one_is_not(
    known_log: EventLog,
) -> None:
    stats = await collect_stats(known_log, project=PROJECT, jobs=50)
    assert stats["flaky_tests"] == EXPECTED_FLAKY
    slowest = stats["slowest_tests"]
    assert slowest[0] == {"nodeid": "tests/test_a.py::test_slow", "runs": 5, "p50": 3.0, "max": 3.0}
    assert [test["nodeid"] for test in slowest] == [
        "tests/test_a.py::test_slow",
        "tests/test_a.py::test_flaky",
        "tests/test_a.py::test_fixed",
    ]


async def test_the_last_n_jobs_and_every_project(known_log: EventLog) -> None:
    last_three = await collect_stats(known_log, project=PROJECT, jobs=3)
    assert last_three["jobs"] == 3
    assert _hook(last_three, "mypy")["p50"] == 2.0
    assert last_three["flaky_tests"] == []  # job 3, the failure on "A", is out of range
    everything = await collect_stats(known_log, project=None, jobs=50)
    assert (everything["project"], everything["jobs"]) == (None, 7)
    nobody = await collect_stats(known_log, project="/nowhere", jobs=50)
    assert (nobody["jobs"], nobody["hooks"], nobody["flaky_tests"]) == (0, [], [])


def test_trend_needs_four_runs_and_compares_halves() -> None:
    assert trend([1.0, 2.0, 3.0]) is None
    assert trend([1.0, 1.0, 3.0, 3.0]) == 3.0
    assert trend([2.0, 2.0, 9.0, 1.0, 1.0]) == 0.5  # the middle run of an odd count is left out
    assert trend([0.0, 0.0, 1.0, 1.0]) is None


class CountingLog:
    """An event log that counts the job reads it serves."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self.url = log.url
        self.reads = 0

    async def list_jobs(self, *, limit: int = 100) -> list[object]:
        return await self._log.list_jobs(limit=limit)  # type: ignore[return-value]

    async def read(self, job_id: str, *, after: int = 0, limit: int = READ_LIMIT) -> list[Event]:
        self.reads += 1
        return await self._log.read(job_id, after=after, limit=limit)


async def test_a_job_s_events_are_read_once_then_its_summary_answers(tmp_path: Path) -> None:
    log = open_store(f"sqlite://{tmp_path / 'events.db'}?keep_days=none&keep_jobs=none")
    await log.open()
    cache = SummaryCache(tmp_path / "cache" / "insights.db")
    try:
        await fill_known_log(log)
        counting = CountingLog(log)
        first = await collect_stats(counting, project=PROJECT, cache=cache)  # type: ignore[arg-type]
        assert counting.reads >= 6
        counting.reads = 0
        again = await collect_stats(counting, project=PROJECT, cache=cache)  # type: ignore[arg-type]
        assert (counting.reads, again) == (0, first)
        await log.append(known_job(0, job_id="newer"))  # one new job: only it is read
        newest = await collect_stats(counting, project=PROJECT, cache=cache)  # type: ignore[arg-type]
        assert newest["jobs"] == 7 and 1 <= counting.reads <= 2
    finally:
        cache.close()
        await log.aclose()


async def test_a_broken_cache_file_is_only_a_miss(tmp_path: Path) -> None:
    (tmp_path / "insights.db").write_bytes(b"not a database" * 100)
    log = open_store("memory://")
    await log.open()
    try:
        await fill_known_log(log)
        cache = SummaryCache(tmp_path / "insights.db")
        stats = await collect_stats(log, project=PROJECT, cache=cache)
        cache.close()
    finally:
        await log.aclose()
    assert stats["flaky_tests"] == EXPECTED_FLAKY


def test_no_jobs_no_numbers() -> None:
    stats = build_stats([], project=None)
    assert stats == {
        "schema": "spruce.stats/1",
        "project": None,
        "jobs": 0,
        "phases": [],
        "hooks": [],
        "slowest_tests": [],
        "flaky_tests": [],
    }


def test_the_summary_cache_answers_many_jobs_and_only_those_asked_for(tmp_path: Path) -> None:
    records = [
        JobRecord(job_id=f"j{n}", project=PROJECT, status="passed", started_at=float(n), last_seq=9)
        for n in range(1200)
    ]
    summaries = [
        summarize(record, known_job(n % 6, job_id=record.job_id))
        for n, record in enumerate(records)
    ]
    cache = SummaryCache(tmp_path / "insights.db")
    try:
        cache.put_many("sqlite:/x.db", list(zip(records, summaries, strict=True)))
        assert len(cache.get_many("sqlite:/x.db", records)) == 1200
        some = cache.get_many("sqlite:/x.db", records[10:13])
        assert sorted(some) == ["j10", "j11", "j12"] and some["j11"] == summaries[11]
        moved = msgspec.structs.replace(records[5], last_seq=10)  # the job grew since
        assert cache.get_many("sqlite:/x.db", [moved]) == {}
        assert cache.get_many("sqlite:/y.db", records[:3]) == {}  # another store
        assert cache.get_many("memory://", records[:3]) == {}
    finally:
        cache.close()


async def test_hooks_come_by_phase_the_slowest_first(known_log: EventLog) -> None:
    stats = await collect_stats(known_log, project=PROJECT)
    assert [(hook["phase"], hook["id"]) for hook in stats["hooks"]] == [
        ("fast_hooks", "ruff-check"),
        ("comprehensive_hooks", "mypy"),
        ("tests", "pytest"),
    ]
