"""The contract every event-log backend keeps; each test runs once per backend."""

from __future__ import annotations

import asyncio

import pytest

from spruce.errors import (
    CursorReset,
    SequenceConflictError,
    StoreError,
    UnknownJobError,
    UsageError,
)
from spruce.events import Event, WorkflowEvent
from spruce.store import EventLog, Retention, follow_all, follow_job
from tests.store.conftest import Reopen, job_events, make_event

pytestmark = pytest.mark.anyio


async def test_each_job_reads_back_in_seq_order_when_jobs_interleave(log: EventLog) -> None:
    a, b = job_events("a", 6), job_events("b", 4)
    for i in range(6):
        batch = [a[i]] + ([b[i]] if i < 4 else [])
        await log.append(batch)
    assert [e.seq for e in await log.read("a")] == [1, 2, 3, 4, 5, 6]
    assert await log.read("b") == b


async def test_a_gap_or_repeat_in_seq_is_refused_and_stores_nothing_of_the_batch(
    log: EventLog,
) -> None:
    await log.append([make_event("j", 1), make_event("j", 2)])
    with pytest.raises(StoreError):
        await log.append([make_event("j", 3), make_event("j", 5)])
    with pytest.raises(StoreError):
        await log.append([make_event("j", 2)])
    assert [e.seq for e in await log.read("j")] == [1, 2]
    assert await log.last_seq("j") == 2


async def test_reading_after_n_resumes_exactly_after_n_and_pages_by_limit(log: EventLog) -> None:
    await log.append(job_events("j", 25))
    assert [e.seq for e in await log.read("j", after=20)] == [21, 22, 23, 24, 25]
    first = await log.read("j", after=0, limit=10)
    second = await log.read("j", after=first[-1].seq, limit=10)
    assert [e.seq for e in first + second] == list(range(1, 21))
    assert await log.read("j", after=25) == []
    assert await log.read("nobody") == []


async def test_the_jobs_index_follows_the_events(log: EventLog) -> None:
    await log.append(job_events("done", 3))
    await log.append(job_events("open", 3, end=False))
    done, running = await log.get_job("done"), await log.get_job("open")
    assert done is not None and running is not None
    assert (done.status, done.workflow, done.project, done.last_seq) == (
        "passed",
        "standard_quality",
        "/tmp/p",
        3,
    )
    assert done.ended_at is not None
    assert (running.status, running.ended_at) == ("running", None)
    assert [j.job_id for j in await log.list_jobs()] == ["open", "done"]
    assert await log.get_job("missing") is None


async def test_an_end_event_with_status_error_marks_the_job_error(log: EventLog) -> None:
    events = job_events("j", 2, end=False)
    events.append(make_event("j", 3, WorkflowEvent.WORKFLOW_FAILED, status="error"))
    await log.append(events)
    job = await log.get_job("j")
    assert job is not None and job.status == "error"


async def test_the_firehose_carries_every_job_in_commit_order_from_any_cursor(
    log: EventLog,
) -> None:
    assert await log.read_all() == []
    start = await log.head()
    await log.append(job_events("a", 3))
    await log.append(job_events("b", 2))
    page = await log.read_all(after=start)
    assert [(e.job_id, e.seq) for _, e in page] == [
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 1),
        ("b", 2),
    ]
    rest = await log.read_all(after=page[2][0])
    assert [(e.job_id, e.seq) for _, e in rest] == [("b", 1), ("b", 2)]
    assert await log.head() == page[-1][0]


async def test_following_a_job_replays_then_goes_live_and_stops_at_its_end(
    log: EventLog, reopen: Reopen
) -> None:
    events = job_events("j", 8)
    await log.append(events[:3])
    reader = await reopen()
    received: list[Event] = []

    async def follow() -> None:
        async for event in follow_job(reader, "j", after=1, poll=0.5):
            received.append(event)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    for event in events[3:]:
        await log.append([event])
        await asyncio.sleep(0.005)
    await asyncio.wait_for(task, 5)
    assert [e.seq for e in received] == [2, 3, 4, 5, 6, 7, 8]


async def test_following_an_unknown_job_says_so(log: EventLog) -> None:
    with pytest.raises(UnknownJobError):
        async for _ in follow_job(log, "ghost"):
            pass


async def test_the_firehose_follow_sees_events_appended_through_another_handle(
    log: EventLog, reopen: Reopen
) -> None:
    reader = await reopen()
    seen: list[tuple[str, int]] = []

    async def tail() -> None:
        async for _, event in follow_all(reader, after=await reader.head(), poll=0.5):
            seen.append((event.job_id, event.seq))
            if len(seen) == 5:
                return

    task = asyncio.create_task(tail())
    await asyncio.sleep(0.05)
    await log.append(job_events("a", 3))
    await log.append(job_events("b", 2))
    await asyncio.wait_for(task, 5)
    assert seen == [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]


async def test_a_cursor_that_trimming_removed_gets_a_reset_not_a_gap(log: EventLog) -> None:
    await log.append(job_events("j", 10))
    report = await log.gc(Retention(keep_days=None, keep_jobs=None, max_events_per_job=4))
    assert report.events_removed == 6
    with pytest.raises(CursorReset) as caught:
        await log.read("j", after=2)
    assert caught.value.earliest == 7
    assert [e.seq for e in await log.read("j", after=6)] == [7, 8, 9, 10]


async def test_a_firehose_cursor_before_removed_jobs_gets_a_reset(log: EventLog) -> None:
    start = await log.head()
    await log.append(job_events("old", 3))
    await asyncio.sleep(0.01)
    await log.append(job_events("new", 3))
    report = await log.gc(Retention(keep_days=None, keep_jobs=1))
    assert (report.jobs_removed, report.events_removed) == (1, 3)
    assert await log.get_job("old") is None
    assert [j.job_id for j in await log.list_jobs()] == ["new"]
    with pytest.raises(CursorReset) as caught:
        await log.read_all(after=start)
    resumed = await log.read_all(after=str(caught.value.resume_after))
    assert [(e.job_id, e.seq) for _, e in resumed] == [("new", 1), ("new", 2), ("new", 3)]


async def test_gc_by_age_removes_only_jobs_started_before_the_cutoff(log: EventLog) -> None:
    old = [
        Event(
            event=e.event,
            job_id=e.job_id,
            seq=e.seq,
            timestamp=e.timestamp - 40 * 86400,
            data=e.data,
        )
        for e in job_events("old", 3)
    ]
    await log.append(old)
    await log.append(job_events("fresh", 3))
    report = await log.gc(Retention(keep_days=30, keep_jobs=None))
    assert report.jobs_removed == 1
    assert [j.job_id for j in await log.list_jobs()] == ["fresh"]


async def test_a_malformed_firehose_cursor_is_a_usage_error(log: EventLog) -> None:
    with pytest.raises(UsageError):
        await log.read_all(after="not-a-cursor!")


async def test_a_job_s_heartbeat_is_seen_by_every_handle_until_it_is_forgotten(
    log: EventLog, reopen: Reopen
) -> None:
    other = await reopen()
    assert await other.heartbeat("job-a") is None
    await log.beat("job-a", 1)
    await log.beat("job-b", 7)
    assert await other.heartbeat("job-a") == 1
    await log.beat("job-a", 2)
    assert await other.heartbeat("job-a") == 2
    await log.beat("job-a", None)
    assert await other.heartbeat("job-a") is None
    assert await other.heartbeat("job-b") == 7


async def test_reopening_removes_only_a_job_s_last_end_event_and_lets_it_go_on(
    log: EventLog, reopen: Reopen
) -> None:
    await log.append(job_events("j", 5))  # seq 1..5, the end at 5
    with pytest.raises(SequenceConflictError):
        await log.reopen("j", 4)  # not its last event
    await log.reopen("j", 5)
    other = await reopen()
    record = await other.get_job("j")
    assert record is not None and (record.status, record.last_seq, record.ended_at) == (
        "running",
        4,
        None,
    )
    with pytest.raises(SequenceConflictError):
        await log.reopen("j", 4)  # not an end event
    await log.append([make_event("j", 5), make_event("j", 6, WorkflowEvent.WORKFLOW_COMPLETED)])
    assert [e.seq for e in await other.read("j")] == [1, 2, 3, 4, 5, 6]
    assert [e.event for e in await other.read("j", after=4)] == [
        WorkflowEvent.HOOK_STARTED,
        WorkflowEvent.WORKFLOW_COMPLETED,
    ]
    record = await other.get_job("j")
    assert record is not None and record.status == "passed"
