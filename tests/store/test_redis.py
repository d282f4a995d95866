"""The Redis event log beyond the shared contract: caps, live wake-ups, URLs, bad input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from spruce.errors import CursorReset, StoreError, StoreURLError, UsageError
from spruce.store import Retention, follow_job, open_store
from spruce.store.redis import RedisEventLog, parse_redis_url
from tests.conftest import free_port
from tests.store.conftest import job_events, make_event
from tests.store.redis_support import SHARED_URL, isolated_store_url

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def url() -> Iterator[str]:
    """A namespace of this test's own on the shared Redis, without automatic retention."""
    with isolated_store_url() as base:
        yield base + "?keep_days=none&keep_jobs=none"


@pytest.fixture
async def log(url: str) -> AsyncIterator[RedisEventLog]:
    store = RedisEventLog(url, retention=Retention(keep_days=None, keep_jobs=None))
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


async def test_the_url_chooses_db_and_namespace_and_hides_the_password() -> None:
    client, namespace, safe = parse_redis_url("redis://u:secret@h:7000/3/team-a?keep_days=7")
    assert (client, namespace) == ("redis://u:secret@h:7000/3", "team-a")
    assert "secret" not in safe
    assert parse_redis_url("redis://h")[:2] == ("redis://h/0", "spruce")
    for bad in ("redis:///0", "redis://h/x", "redis://h/0/a:b", "redis://h/0/a/b"):
        with pytest.raises(StoreURLError):
            parse_redis_url(bad)


async def test_open_store_builds_the_redis_log_with_the_url_retention(url: str) -> None:
    store = open_store(url.split("?")[0] + "?max_events_per_job=50&keep_jobs=none")
    assert isinstance(store, RedisEventLog)
    assert store.retention.max_events_per_job == 50
    assert store.retention.keep_jobs is None


async def test_an_unreachable_server_fails_open_with_a_message_naming_it() -> None:
    store = RedisEventLog(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreError, match=r"cannot reach Redis at redis://127\.0\.0\.1"):
        await store.open()


async def test_two_namespaces_on_one_database_never_see_each_other(log: RedisEventLog) -> None:
    with isolated_store_url() as other_url:
        other = RedisEventLog(other_url)
        await other.open()
        try:
            await log.append(job_events("same-id", 3))
            assert await other.get_job("same-id") is None
            assert await other.read_all() == []
            await other.append(job_events("same-id", 2))  # seq 1 again: its own job
            assert await log.last_seq("same-id") == 3
        finally:
            await other.aclose()


async def test_a_follower_on_another_connection_is_woken_by_xread_not_by_polling(
    log: RedisEventLog, url: str
) -> None:
    reader = RedisEventLog(url)
    await reader.open()
    events = job_events("live", 6)
    await log.append(events[:1])
    received: list[tuple[int, float]] = []

    async def follow() -> None:
        # A 60 s poll: only the XREAD wake-up can deliver within the test's few seconds.
        async for event in follow_job(reader, "live", after=0, poll=60.0):
            received.append((event.seq, time.monotonic()))

    task = asyncio.create_task(follow())
    try:
        await asyncio.sleep(0.2)
        sent: dict[int, float] = {}
        for event in events[1:]:
            sent[event.seq] = time.monotonic()
            await log.append([event])
            await asyncio.sleep(0.05)
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
        await reader.aclose()
    assert [seq for seq, _ in received] == [1, 2, 3, 4, 5, 6]
    lags = [at - sent[seq] for seq, at in received if seq in sent]
    assert max(lags) < 1.0, lags


async def test_the_per_job_cap_from_the_url_trims_on_append_and_resets_old_cursors(
    url: str,
) -> None:
    store = RedisEventLog(url, retention=Retention(keep_days=None, keep_jobs=None,
                                                   max_events_per_job=5))  # fmt: skip
    await store.open()
    try:
        await store.append(job_events("long", 12))
        with pytest.raises(CursorReset) as caught:
            await store.read("long", after=0)
        assert (caught.value.earliest, caught.value.resume_after) == (8, 7)
        assert [e.seq for e in await store.read("long", after=7)] == [8, 9, 10, 11, 12]
        record = await store.get_job("long")
        assert record is not None and (record.first_seq, record.last_seq) == (8, 12)
    finally:
        await store.aclose()


async def test_the_firehose_cap_resets_a_reader_behind_it_and_resume_loses_nothing_kept(
    url: str,
) -> None:
    # A cap of 10 with "~" trims whole stream nodes only: add enough to drop at least one.
    store = RedisEventLog(url, firehose_maxlen=10)
    await store.open()
    try:
        for job in range(6):
            await store.append(job_events(f"j{job}", 100))
        with pytest.raises(CursorReset) as caught:
            await store.read_all(after="0")
        resumed = await store.read_all(after=str(caught.value.resume_after), limit=1000)
        assert resumed, "the newest entries are always kept"
        cursors = [int(cursor) for cursor, _ in resumed]
        assert cursors == list(range(cursors[0], 601))
        assert cursors[0] == int(caught.value.earliest)
    finally:
        await store.aclose()


async def test_bad_input_is_refused_and_stores_nothing(log: RedisEventLog) -> None:
    with pytest.raises(UsageError):
        await log.append([make_event("ok", 1), make_event("bad:id", 1)])
    assert await log.read_all() == []
    with pytest.raises(UsageError):
        await log.read("ok", after=-1)
    with pytest.raises(UsageError):
        await log.read("ok", limit=0)
    with pytest.raises(UsageError):
        await log.read_all(after="12-0")
    # A name outside the job-id alphabet names no job (and never another key).
    assert await log.read("x:info") == []
    assert await log.get_job("../x") is None


async def test_a_seq_conflict_names_the_job_and_leaves_redis_unchanged(
    log: RedisEventLog,
) -> None:
    await log.append(job_events("j", 3, end=False))
    head = await log.head()
    with pytest.raises(StoreError, match=r"job j: seq 5 does not follow 5"):
        await log.append([make_event("j", 4), make_event("j", 5), make_event("j", 5)])
    assert await log.head() == head
    assert await log.last_seq("j") == 3


async def test_the_jobs_index_lives_in_a_hash_and_a_sorted_set(log: RedisEventLog) -> None:
    await log.append(job_events("k3x9", 4))
    client = redis.Redis.from_url(SHARED_URL)
    try:
        ns = log.namespace
        info = client.hgetall(f"{ns}:job:k3x9:info")
        assert info[b"status"] == b"passed" and info[b"last_seq"] == b"4"
        assert client.zscore(f"{ns}:jobs", "k3x9") is not None
        assert client.xlen(f"{ns}:job:k3x9") == 4
        assert [entry_id for entry_id, _ in client.xrange(f"{ns}:all") or []] == [
            b"1-0",
            b"2-0",
            b"3-0",
            b"4-0",
        ]
    finally:
        client.close()
