"""Redis going away mid-run: the job goes on, and every event ends up stored exactly once.

Each test runs a redis-server of its own on a free loopback port and kills it mid-run.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spruce.bus import WorkflowEventBus
from spruce.events import Event, WorkflowEvent
from spruce.store.redis import RedisEventLog
from tests.store.redis_support import RedisServer, private_redis

pytestmark = [pytest.mark.anyio, pytest.mark.redis]
JOB = "outage-job"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server that the test may kill and start again on the same port."""
    with private_redis(tmp_path) as server:
        yield server


async def _publish(bus: WorkflowEventBus, count: int, *, end: bool = False) -> float:
    """Publish `count` hook events (then maybe the end event); return the longest flush."""
    slowest = 0.0
    for index in range(count):
        await bus.publish(
            WorkflowEvent.HOOK_STARTED,
            job_id=JOB,
            step_id=f"fast_hooks/h{index}",
            data={"hook": f"h{index}", "phase": "fast_hooks"},
        )
        if index % 5 == 4:
            started = time.monotonic()
            await bus.flush()
            slowest = max(slowest, time.monotonic() - started)
    if end:
        await bus.publish(WorkflowEvent.WORKFLOW_COMPLETED, job_id=JOB, data={"status": "passed"})
    await bus.flush()
    return slowest


async def _start_job(bus: WorkflowEventBus) -> None:
    await bus.publish(
        WorkflowEvent.WORKFLOW_SESSION_INITIALIZING,
        job_id=JOB,
        data={"workflow": "standard_quality", "project": "/tmp/p"},
    )


async def _stored(url: str) -> tuple[list[Event], list[tuple[str, int]]]:
    """The job's events, and every (job, seq) of the firehose, read by a fresh connection."""
    reader = RedisEventLog(url)
    await reader.open()
    try:
        events = await reader.read(JOB, limit=10_000)
        firehose = [(e.job_id, e.seq) for _, e in await reader.read_all(limit=10_000)]
        return events, firehose
    finally:
        await reader.aclose()


def _expect_whole_job(events: list[Event], firehose: list[tuple[str, int]], total: int) -> None:
    assert [e.seq for e in events] == list(range(1, total + 1))
    assert events[0].event is WorkflowEvent.WORKFLOW_SESSION_INITIALIZING
    assert events[-1].event is WorkflowEvent.WORKFLOW_COMPLETED
    assert firehose == [(JOB, seq) for seq in range(1, total + 1)]


@pytest.mark.timeout(60)
async def test_redis_down_for_seconds_mid_run_loses_and_duplicates_nothing(
    server: RedisServer, tmp_path: Path
) -> None:
    log = RedisEventLog(server.url, spill_dir=tmp_path / "spill", close_timeout=15)
    await log.open()
    bus = WorkflowEventBus(log)
    await bus.start()
    try:
        await _start_job(bus)
        await _publish(bus, 19)
        await asyncio.to_thread(server.stop)
        down_at = time.monotonic()
        slowest = await _publish(bus, 30)
        assert log.buffered > 0, "events published while Redis is down wait in the buffer"
        await asyncio.sleep(max(0.0, 2.5 - (time.monotonic() - down_at)))
        await asyncio.to_thread(server.start)
        await _publish(bus, 19, end=True)
        async with asyncio.timeout(20):
            while log.buffered:
                await asyncio.sleep(0.05)
    finally:
        await bus.aclose()
        await log.aclose()
    assert slowest < 1.0, f"a flush took {slowest:.2f}s while Redis was down: the job stalled"
    events, firehose = await _stored(server.url)
    _expect_whole_job(events, firehose, 1 + 19 + 30 + 19 + 1)
    assert not (tmp_path / "spill").exists(), "nothing needed spilling"


@pytest.mark.timeout(60)
async def test_an_overflowing_buffer_spills_to_a_file_that_spruce_import_loads_once(
    server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = RedisEventLog(
        server.url, spill_dir=tmp_path / "spill", max_buffered=20, close_timeout=0.5
    )
    await log.open()
    bus = WorkflowEventBus(log)
    await bus.start()
    try:
        await _start_job(bus)
        await _publish(bus, 4)
        await asyncio.to_thread(server.stop)
        await _publish(bus, 40, end=True)
    finally:
        await bus.aclose()
        started = time.monotonic()
        await log.aclose()
        closing = time.monotonic() - started
    assert closing < 5.0
    spill = log.spill_path
    assert spill is not None and spill.parent == tmp_path / "spill"
    assert len(spill.read_text().splitlines()) == 41  # seq 6..46: everything Redis missed
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert f"spruce import {spill}" in warnings

    await asyncio.to_thread(server.start)
    first = await asyncio.to_thread(_spruce_import, spill, server.url)
    assert first.returncode == 0, first.stderr
    assert "imported 41 events" in first.stdout
    again = await asyncio.to_thread(_spruce_import, spill, server.url)
    assert again.returncode == 0, again.stderr
    assert "imported 0 events" in again.stdout and "41 were already stored" in again.stdout
    events, firehose = await _stored(server.url)
    _expect_whole_job(events, firehose, 46)


@pytest.mark.timeout(60)
async def test_closing_while_redis_is_still_down_keeps_the_held_events_in_a_spill_file(
    server: RedisServer, tmp_path: Path
) -> None:
    log = RedisEventLog(server.url, spill_dir=tmp_path / "spill", close_timeout=0.5)
    await log.open()
    bus = WorkflowEventBus(log)
    await bus.start()
    try:
        await _start_job(bus)
        await _publish(bus, 3)
        await asyncio.to_thread(server.stop)
        await _publish(bus, 5, end=True)
    finally:
        await bus.aclose()
        await log.aclose()
    spill = log.spill_path
    assert spill is not None
    assert len(spill.read_text().splitlines()) == 6
    await asyncio.to_thread(server.start)
    result = await asyncio.to_thread(_spruce_import, spill, server.url)
    assert result.returncode == 0, result.stderr
    events, firehose = await _stored(server.url)
    _expect_whole_job(events, firehose, 10)


def _spruce_import(path: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spruce", "import", str(path), "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        check=False,
    )
