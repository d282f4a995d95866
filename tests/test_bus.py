"""WorkflowEventBus: ordering, append-then-notify, isolation of bad handlers, cleanup, counters."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from spruce.bus import WorkflowEventBus
from spruce.errors import StoreError, StoreUnavailableError
from spruce.events import Event, WorkflowEvent
from spruce.store import EventLog, open_store
from spruce.store.memory import MemoryEventLog

pytestmark = pytest.mark.anyio
HOOK = WorkflowEvent.HOOK_STARTED


@pytest.fixture
async def bus() -> AsyncIterator[WorkflowEventBus]:
    async with WorkflowEventBus(MemoryEventLog(), handler_timeout=0.5) as bus:
        yield bus


async def publish_many(bus: WorkflowEventBus, count: int, job_id: str = "j") -> None:
    for i in range(count):
        await bus.publish(HOOK, job_id=job_id, step_id="fast_hooks/x", data={"i": i})


async def test_sync_async_wildcard_and_typed_subscribers_each_get_their_events_in_order(
    bus: WorkflowEventBus,
) -> None:
    every: list[Event] = []
    typed: list[Event] = []
    async_every: list[Event] = []

    async def collect(event: Event) -> None:
        async_every.append(event)

    bus.subscribe(None, every.append)
    bus.subscribe(WorkflowEvent.WORKFLOW_COMPLETED, typed.append)
    bus.subscribe(None, collect)
    await publish_many(bus, 50)
    await bus.publish(WorkflowEvent.WORKFLOW_COMPLETED, job_id="j", data={"status": "passed"})
    await bus.aclose()
    assert [e.seq for e in every] == list(range(1, 52))
    assert every == async_every
    assert [e.event for e in typed] == [WorkflowEvent.WORKFLOW_COMPLETED]


async def test_a_subscriber_only_sees_events_the_log_already_has(bus: WorkflowEventBus) -> None:
    unstored: list[int] = []

    async def check(event: Event) -> None:
        stored = await bus.log.read(event.job_id, after=event.seq - 1, limit=1)
        if stored != [event]:
            unstored.append(event.seq)

    bus.subscribe(None, check)
    await publish_many(bus, 200)
    await bus.aclose()
    assert bus.stats().delivered == 200
    assert unstored == []


async def test_raising_and_blocking_subscribers_do_not_stop_the_publisher_or_the_others(
    bus: WorkflowEventBus,
) -> None:
    release = threading.Event()
    good: list[Event] = []
    blocked_sync: list[Event] = []
    blocked_async: list[Event] = []

    def explode(event: Event) -> None:
        raise RuntimeError(f"handler bug on {event.seq}")

    def hang(event: Event) -> None:
        blocked_sync.append(event)
        release.wait(10)

    async def hang_async(event: Event) -> None:
        blocked_async.append(event)
        await asyncio.sleep(10)

    bus.subscribe(None, explode)
    bus.subscribe(None, hang)
    bus.subscribe(None, hang_async)
    bus.subscribe(None, good.append)
    await publish_many(bus, 2000)
    await bus.flush()
    while len(good) < 2000:
        await asyncio.sleep(0.01)
    assert [e.seq for e in good] == list(range(1, 2001))
    assert len(blocked_sync) < 2000
    while bus.stats().handler_errors < 2000:
        await asyncio.sleep(0.01)
    release.set()
    await bus.aclose()
    stats = bus.stats()
    assert stats.handler_errors == 2000
    assert stats.handler_timeouts >= 1


async def test_a_subscriber_that_falls_off_the_ring_counts_what_it_missed() -> None:
    release = threading.Event()
    async with WorkflowEventBus(MemoryEventLog(), ring_size=100, handler_timeout=5) as bus:
        got: list[Event] = []

        def slow(event: Event) -> None:
            got.append(event)
            release.wait(5)

        bus.subscribe(None, slow)
        await publish_many(bus, 1)
        await bus.flush()
        while not got:
            await asyncio.sleep(0.01)
        await publish_many(bus, 1000)
        await bus.flush()
        release.set()
    assert bus.stats().dropped > 0
    assert len(got) + bus.stats().dropped == 1001


async def test_a_job_subscription_ends_itself_after_the_jobs_end_event(
    bus: WorkflowEventBus,
) -> None:
    got: list[Event] = []
    bus.subscribe(None, got.append, job_id="mine")
    await publish_many(bus, 3, job_id="other")
    await publish_many(bus, 2, job_id="mine")
    await bus.publish(WorkflowEvent.WORKFLOW_FAILED, job_id="mine", data={"status": "failed"})
    await bus.flush()
    while bus.stats().subscribers > 2 - 2:  # the job subscription closes itself
        await asyncio.sleep(0.01)
    await publish_many(bus, 2, job_id="mine")
    await bus.aclose()
    assert [(e.job_id, e.seq) for e in got] == [("mine", 1), ("mine", 2), ("mine", 3)]


async def test_unsubscribing_stops_delivery_and_frees_the_subscription(
    bus: WorkflowEventBus,
) -> None:
    got: list[Event] = []
    with bus.subscribe(None, got.append):
        await publish_many(bus, 5)
        await bus.flush()
        while len(got) < 5:
            await asyncio.sleep(0.01)
        assert bus.stats().subscribers == 1
    assert bus.stats().subscribers == 0
    await publish_many(bus, 5)
    await bus.aclose()
    assert len(got) == 5


async def test_seq_continues_from_the_log_when_a_new_bus_publishes_to_an_existing_job() -> None:
    log = MemoryEventLog()
    async with WorkflowEventBus(log) as first:
        await publish_many(first, 3)
    async with WorkflowEventBus(log) as second:
        event = await second.publish(HOOK, job_id="j")
    assert event.seq == 4


async def test_publishing_before_start_is_a_clear_error() -> None:
    bus = WorkflowEventBus(MemoryEventLog())
    with pytest.raises(RuntimeError, match="start"):
        await bus.publish(HOOK, job_id="j")


async def test_a_tailing_bus_delivers_events_another_process_stored_once_each(
    tmp_path: Path,
) -> None:
    url = f"sqlite://{tmp_path / 'e.db'}"
    writer_log, reader_log = open_store(url), open_store(url)
    logs: list[EventLog] = [writer_log, reader_log]
    for log in logs:
        await log.open()
    try:
        async with WorkflowEventBus(writer_log) as writer, WorkflowEventBus(reader_log) as reader:
            seen: list[tuple[str, int]] = []
            reader.subscribe(None, lambda e: seen.append((e.job_id, e.seq)))
            reader.tail_log(after=await reader_log.head())
            await publish_many(reader, 2, job_id="local")
            await publish_many(writer, 30, job_id="remote")
            await writer.flush()
            await reader.flush()
            for _ in range(500):
                if len(seen) >= 32:
                    break
                await asyncio.sleep(0.01)
        assert sorted(seen) == sorted(
            [("local", 1), ("local", 2)] + [("remote", i) for i in range(1, 31)]
        )
        assert [s for j, s in seen if j == "remote"] == list(range(1, 31))
    finally:
        for log in logs:
            await log.aclose()


class _RefusingLog(MemoryEventLog):
    """A log that refuses every append, for good (as a read-only file does) or for a while."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.tries = 0

    async def append(self, events: Sequence[Event]) -> None:
        self.tries += 1
        raise self.error


@pytest.mark.timeout(30)
@pytest.mark.parametrize("lasting", [True, False])
async def test_a_refusal_spills_the_job_and_names_the_cause_once_waiting_cannot_help(
    tmp_path: Path, lasting: bool
) -> None:
    error = (
        StoreError("events.db: attempt to write a readonly database")
        if lasting
        else StoreUnavailableError("disk full: events.db (database or disk is full)")
    )
    log = _RefusingLog(error)
    bus = WorkflowEventBus(log, retry_window=1.0, spill_dir=tmp_path / "spill")
    await bus.start()
    seen: list[Event] = []
    bus.subscribe(None, seen.append)
    try:
        await bus.publish(WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, job_id="j", data={})
        with pytest.raises(StoreUnavailableError) as raised:
            await bus.flush()
        await bus.publish(WorkflowEvent.WORKFLOW_FAILED, job_id="j", data={"status": "error"})
        with pytest.raises(StoreUnavailableError):
            await bus.flush()
    finally:
        await bus.aclose()
    message = str(raised.value)
    assert message.startswith("event log unavailable: ")
    assert str(error) in message and f"spruce import {bus.spill_path}" in message
    assert bus.log_unavailable.is_set() and seen == []
    assert bus.spill_path is not None
    assert [json.loads(line)["seq"] for line in bus.spill_path.read_text().splitlines()] == [1, 2]
    assert (log.tries == 1) is lasting, "a lasting refusal is not retried; a passing one is"


@pytest.mark.timeout(30)
async def test_a_job_ended_by_a_reaper_while_its_runner_lives_keeps_its_own_events_for_import(
    tmp_path: Path,
) -> None:
    from spruce.store.spill import import_spill

    log = MemoryEventLog()
    bus = WorkflowEventBus(log, spill_dir=tmp_path / "spill")
    await bus.start()
    try:
        await bus.publish(WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, job_id="j", data={})
        await bus.flush()
        reaped = Event(
            event=WorkflowEvent.WORKFLOW_FAILED,
            job_id="j",
            seq=2,
            timestamp=0.0,
            data={"status": "error", "reaped": True},
        )
        await log.append([reaped])  # another host's judge thought this runner gone
        await bus.publish(WorkflowEvent.HOOK_STARTED, job_id="j", data={})
        with pytest.raises(StoreUnavailableError, match="another process ended the job"):
            await bus.flush()
        await bus.publish(WorkflowEvent.WORKFLOW_COMPLETED, job_id="j", data={"status": "passed"})
        with pytest.raises(StoreUnavailableError):
            await bus.flush()
    finally:
        await bus.aclose()
    assert bus.spill_path is not None
    await import_spill(log, bus.spill_path)
    stored = await log.read("j")
    assert [(e.seq, e.event) for e in stored] == [
        (1, WorkflowEvent.WORKFLOW_SESSION_INITIALIZING),
        (2, WorkflowEvent.HOOK_STARTED),
        (3, WorkflowEvent.WORKFLOW_COMPLETED),
    ]
    record = await log.get_job("j")
    assert record is not None and record.status == "passed"
