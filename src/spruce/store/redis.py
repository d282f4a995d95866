"""`redis://HOST:PORT/DB[/NAMESPACE]`: the event log on Redis Streams, for runners and servers
on many hosts.

A stream per job (entry id = seq), one all-jobs stream whose entry ids are the firehose cursors,
and a jobs index (a hash per job, a sorted set by start time), all written by one Lua script.
While Redis is unreachable, appends wait in a bounded buffer; what cannot be delivered in time
goes to a spill file that `spruce import` loads later.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from spruce.errors import (
    CursorReset,
    SequenceConflictError,
    StoreError,
    StoreURLError,
    UsageError,
)
from spruce.events import Event, check_job_id, decode_event, encode_event, is_valid_job_id
from spruce.store.base import (
    READ_LIMIT,
    RUNNER_MEMORY,
    AutoRetention,
    ChangeSignal,
    GcReport,
    JobRecord,
    Retention,
    end_status,
    job_fields_from,
    keep_days_cutoff,
    parse_int_cursor,
)
from spruce.store.redis_scripts import APPEND, REMOVE, REOPEN
from spruce.store.spill import SpillKeeper

_log: Final = logging.getLogger("spruce.store.redis")
_NAMESPACE_RE: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# The live wake-up blocks below the socket timeout, so a healthy idle connection never times out.
_BLOCK_MS: Final = 2000
_SOCKET_TIMEOUT: Final = 5.0
_CONNECT_TIMEOUT: Final = 2.0
_BACKOFF: Final = (0.05, 2.0)  # first and longest pause between reconnect attempts
_FLUSH_CHUNK: Final = 2000
_EXACT_CAP_BELOW: Final = 1000  # smaller per-job caps are kept exactly, larger ones with "~"
_Item = tuple[Event, bytes]
# What XRANGE answers when responses are not decoded: (entry id, {field: value}) pairs.
_Entries = list[tuple[bytes, dict[bytes, bytes]]]


class _Keys:
    """The key names of one namespace."""

    def __init__(self, namespace: str) -> None:
        self.all = f"{namespace}:all"
        self.next = f"{namespace}:all:next"
        self.floor = f"{namespace}:all:floor"
        self.jobs = f"{namespace}:jobs"
        self._job = f"{namespace}:job:"
        self._runner = f"{namespace}:runner:"

    def job(self, job_id: str) -> str:
        return self._job + job_id

    def info(self, job_id: str) -> str:
        return f"{self._job}{job_id}:info"

    def runner(self, runner: str) -> str:
        return self._runner + runner


def parse_redis_url(url: str) -> tuple[str, str, str]:
    """(URL for the client, key namespace, URL safe to print) from a spruce Redis store URL."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise StoreURLError(f"{url!r} names no Redis host: use redis://HOST:PORT/DB")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > 2 or (segments and not segments[0].isdigit()):
        raise StoreURLError(f"{url!r}: the path must be /DB or /DB/NAMESPACE (DB a number)")
    namespace = segments[1] if len(segments) == 2 else "spruce"
    if not _NAMESPACE_RE.match(namespace):
        raise StoreURLError(f"{url!r}: the namespace may use 1-64 characters of [A-Za-z0-9._-]")
    db = segments[0] if segments else "0"
    safe = url.replace(f":{parts.password}@", ":***@") if parts.password else url
    return f"{parts.scheme}://{parts.netloc}/{db}", namespace, safe.split("?", 1)[0]


class RedisEventLog:
    """Events, the firehose and the jobs index in Redis, shared by processes on many hosts."""

    def __init__(
        self,
        url: str,
        *,
        retention: Retention | None = None,
        spill_dir: Path | None = None,
        max_buffered: int = 100_000,
        max_buffered_bytes: int = 64 * 1024 * 1024,
        close_timeout: float = 10.0,
        firehose_maxlen: int = 1_000_000,
    ) -> None:
        self.url = url
        self.retention = retention or Retention()
        self._client_url, self.namespace, self.safe_url = parse_redis_url(url)
        self._keys = _Keys(self.namespace)
        self._max_buffered = max_buffered
        self._max_buffered_bytes = max_buffered_bytes
        self._close_timeout = close_timeout
        self._firehose_maxlen = firehose_maxlen
        self._auto_retention = AutoRetention()
        self._signal = ChangeSignal()
        self._redis: Redis | None = None
        self._listen_client: Redis | None = None
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        # Outage state: events waiting for Redis, in append order, and jobs sent to the spill file.
        self._buffer: deque[_Item] = deque()
        self._buffered_bytes = 0
        self._held: dict[str, int] = {}
        self._spilled: dict[str, int] = {}
        self._spill = SpillKeeper(spill_dir, stem=f"redis-{self.namespace}")
        # Moves when the buffer is spilled, so that a flush in flight leaves the buffer alone.
        self._epoch = 0
        self._send_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    @property
    def version(self) -> int:
        return self._signal.version

    @property
    def buffered(self) -> int:
        """Events accepted while Redis was unreachable and not delivered yet."""
        return len(self._buffer)

    @property
    def spill_path(self) -> Path | None:
        """The spill file, once events had to be written to one."""
        return self._spill.path

    # lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        client = self._connect()
        try:
            info = await client.info("server")
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(f"cannot reach Redis at {self.safe_url}: {exc}") from None
        version = tuple(int(p) for p in str(info.get("redis_version", "0")).split(".")[:2])
        if version < (6, 2):
            await client.aclose()
            raise StoreError(f"Redis at {self.safe_url} is {version}; spruce needs 6.2 or newer")
        self._redis = client
        self._listen_client = self._connect()
        self._append_script = client.register_script(APPEND)
        self._remove_script = client.register_script(REMOVE)
        self._reopen_script = client.register_script(REOPEN)
        self._closing = False
        self._tasks = [asyncio.create_task(self._listen(), name="spruce-redis-listen")]

    def _connect(self) -> Redis:
        return Redis.from_url(
            self._client_url,
            socket_timeout=_SOCKET_TIMEOUT,
            socket_connect_timeout=_CONNECT_TIMEOUT,
            # Our own loops retry; a library retry could run a half-answered append twice.
            retry=Retry(NoBackoff(), 0),
        )

    async def aclose(self) -> None:
        await self._stop_listener()
        await self._drain_on_close()
        self._spill.close()
        if self._spill.path is not None:
            _log.warning(
                "%d events of job(s) %s did not reach Redis at %s; they are kept in %s."
                " Load them with: spruce import %s --store %s",
                self._spill.written,
                ", ".join(sorted(self._spilled)),
                self.safe_url,
                self._spill.path,
                self._spill.path,
                self.safe_url,
            )
        if self._spill.lost:
            _log.error("%d events for Redis at %s were lost", self._spill.lost, self.safe_url)
        for client in (self._redis, self._listen_client):
            if client is not None:
                await client.aclose()
        self._redis = self._listen_client = None

    async def _stop_listener(self) -> None:
        self._closing = True
        tasks, self._tasks = set(self._tasks), []
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=0.2)
        if pending and self._listen_client is not None:
            # redis-py can lose a cancellation inside a blocking read; a closed socket ends it.
            await self._listen_client.connection_pool.disconnect()
            _, pending = await asyncio.wait(pending, timeout=_SOCKET_TIMEOUT)
        if pending:
            _log.warning("the Redis listener of %s did not stop", self.safe_url)

    async def _drain_on_close(self) -> None:
        if not self._buffer:
            return
        _log.warning(
            "waiting up to %.0fs for Redis at %s to take %d buffered events",
            self._close_timeout,
            self.safe_url,
            len(self._buffer),
        )
        flusher = self._flusher
        if flusher is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(flusher), self._close_timeout)
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        if self._buffer:
            self._spill_buffer(f"Redis at {self.safe_url} did not come back before closing")

    # writing -------------------------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        items = [(check_event(e), encode_event(e)) for e in events]
        if self._spilled:
            # Once a job's events went to the spill file, the rest follow them there, in order.
            self._write_spill([i for i in items if i[0].job_id in self._spilled])
            items = [i for i in items if i[0].job_id not in self._spilled]
            if not items:
                return
        if self._buffer:  # an outage is in progress: queue behind what is waiting
            self._hold(items)
            return
        async with self._send_lock:
            if self._buffer:
                self._hold(items)
                return
            try:
                await self._send(items, lenient=False)
            except (RedisError, OSError) as exc:
                _log.warning(
                    "Redis at %s is unavailable (%s); holding events until it is back",
                    self.safe_url,
                    exc,
                )
                self._hold(items)
                return
        self._signal.bump()
        if self._auto_retention.due(events):
            await self._auto_gc()

    async def _send(self, items: Sequence[_Item], *, lenient: bool) -> None:
        """Run the append script; StoreError if Redis refused the events themselves."""
        client = self._client()
        k = self._keys
        keys: list[str] = [k.all, k.next, k.jobs]
        jobs: dict[str, int] = {}
        job_args: list[str | int | bytes] = []
        event_args: list[str | int | bytes] = []
        for event, body in items:
            index = jobs.get(event.job_id)
            if index is None:
                index = jobs[event.job_id] = len(jobs) + 1
                keys += [k.job(event.job_id), k.info(event.job_id)]
                workflow, project = job_fields_from(event)
                job_args += [event.job_id, repr(event.timestamp), workflow or "", project or ""]
            status = end_status(event) or ""
            event_args += [index, event.seq, status, repr(event.timestamp), body]
        cap = self.retention.max_events_per_job or 0
        approx = "=" if cap < _EXACT_CAP_BELOW else "~"
        head = [1 if lenient else 0, cap, approx, self._firehose_maxlen, len(jobs)]
        try:
            await self._append_script(
                keys=keys, args=[*head, *job_args, *event_args], client=client
            )
        except ResponseError as exc:
            if str(exc).startswith("SPRUCE "):
                raise SequenceConflictError(str(exc).removeprefix("SPRUCE ")) from None
            raise

    # outage --------------------------------------------------------------------------------

    def _hold(self, items: Sequence[_Item]) -> None:
        for item in items:
            self._buffer.append(item)
            self._buffered_bytes += len(item[1])
            self._held[item[0].job_id] = item[0].seq
        too_many = len(self._buffer) > self._max_buffered
        if too_many or self._buffered_bytes > self._max_buffered_bytes:
            self._spill_buffer(
                f"more than {self._max_buffered} events or {self._max_buffered_bytes}"
                f" bytes waited for Redis at {self.safe_url}"
            )
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="spruce-redis-flush")

    async def _flush(self) -> None:
        """Deliver the buffer in order once Redis answers again, retrying with backoff."""
        delay = _BACKOFF[0]
        delivered = 0
        while self._buffer:
            epoch = self._epoch
            chunk = list(itertools.islice(self._buffer, _FLUSH_CHUNK))
            try:
                async with self._send_lock:
                    # Lenient: a batch whose reply was lost may be stored already; skip those.
                    await self._send(chunk, lenient=True)
            except StoreError as exc:
                self._spill_buffer(f"Redis at {self.safe_url} refused held events: {exc}")
                return
            except (RedisError, OSError):
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, _BACKOFF[1])
                continue
            delay = _BACKOFF[0]
            if epoch == self._epoch:
                for _ in chunk:
                    self._buffered_bytes -= len(self._buffer.popleft()[1])
                delivered += len(chunk)
            self._signal.bump()
        self._held.clear()
        if delivered:
            _log.warning("Redis at %s is back; %d held events delivered", self.safe_url, delivered)

    def _spill_buffer(self, reason: str) -> None:
        items = list(self._buffer)
        self._buffer.clear()
        self._buffered_bytes = 0
        self._held.clear()
        self._epoch += 1
        first = self._spill.path is None
        self._write_spill(items)
        if first and self._spill.path is not None:
            _log.warning(
                "%s; events are written to %s from now on. Load them later with:"
                " spruce import %s --store %s",
                reason,
                self._spill.path,
                self._spill.path,
                self.safe_url,
            )

    def _write_spill(self, items: Sequence[_Item]) -> None:
        if not items:
            return
        self._spill.keep([body for _, body in items])
        for event, _ in items:
            self._spilled[event.job_id] = event.seq

    # reading -------------------------------------------------------------------------------

    async def last_seq(self, job_id: str) -> int:
        local = self._spilled.get(job_id) or self._held.get(job_id)
        if local is not None:
            return local
        if not is_valid_job_id(job_id):
            return 0
        async with self._errors():
            value = await self._client().hget(self._keys.info(job_id), "last_seq")
        return int(value) if value is not None else 0

    async def read(self, job_id: str, *, after: int = 0, limit: int = READ_LIMIT) -> list[Event]:
        _check_page(after, limit)
        if not is_valid_job_id(job_id):
            return []
        async with self._errors():
            page: _Entries = await self._client().xrange(  # type: ignore[assignment]
                self._keys.job(job_id), f"{after + 1}-0", "+", count=limit
            )
        events = [decode_event(fields[b"e"]) for _id, fields in page]
        if events and events[0].seq > after + 1:
            first = events[0].seq
            raise CursorReset(after, first, first - 1)
        return events

    async def read_all(
        self, *, after: str | None = None, limit: int = READ_LIMIT
    ) -> list[tuple[str, Event]]:
        position = parse_int_cursor(after)
        _check_page(0, limit)
        async with self._errors(), self._client().pipeline(transaction=False) as pipe:
            pipe.get(self._keys.floor)
            pipe.xrange(self._keys.all, "-", "+", count=1)
            pipe.xrange(self._keys.all, f"{position + 1}-0", "+", count=limit)
            floor_raw, first, page = await pipe.execute()
        # Everything before the first kept entry was removed (cursors are dense), and gc raises
        # the floor past the events it removed from the middle.
        floor = int(floor_raw or 0)
        if first:
            floor = max(floor, _cursor(first[0][0]) - 1)
        if position < floor:
            raise CursorReset(after or "0", str(floor + 1), str(floor))
        return [(str(_cursor(entry_id)), decode_event(fields[b"e"])) for entry_id, fields in page]

    async def head(self) -> str:
        async with self._errors():
            value = await self._client().get(self._keys.next)
        return str(int(value or 0))

    async def get_job(self, job_id: str) -> JobRecord | None:
        if not is_valid_job_id(job_id):
            return None
        records = await self._records([job_id])
        return records[0] if records else None

    async def list_jobs(self, *, limit: int = 100) -> list[JobRecord]:
        if limit < 1:
            return []
        async with self._errors():
            ids: list[bytes] = await self._client().zrevrange(  # type: ignore[assignment]
                self._keys.jobs, 0, limit - 1
            )
        return await self._records([raw.decode() for raw in ids])

    async def _records(self, job_ids: Sequence[str]) -> list[JobRecord]:
        async with self._errors(), self._client().pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self._keys.info(job_id))
                pipe.xrange(self._keys.job(job_id), "-", "+", count=1)
            replies = await pipe.execute()
        records = []
        for info, first in zip(replies[::2], replies[1::2], strict=True):
            if info:  # gc may remove a job between the index read and this one
                records.append(_record(info, first))
        return records

    # runners' heartbeats (a key each, that Redis drops a day after its last renewal) -------

    async def beat(self, runner: str, value: int | None) -> None:
        key = self._keys.runner(runner)
        async with self._errors():
            if value is None:
                await self._client().delete(key)
            else:
                await self._client().set(key, value, ex=int(RUNNER_MEMORY))

    async def heartbeat(self, runner: str) -> int | None:
        async with self._errors():
            value = await self._client().get(self._keys.runner(runner))
        return None if value is None else int(value)

    async def reopen(self, job_id: str, seq: int) -> None:
        check_job_id(job_id)
        keys = [self._keys.job(job_id), self._keys.info(job_id), self._keys.all]
        try:
            async with self._errors():
                await self._reopen_script(keys=keys, args=[job_id, seq], client=self._client())
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, ResponseError) and str(cause).startswith("SPRUCE "):
                raise SequenceConflictError(str(cause).removeprefix("SPRUCE ")) from None
            raise
        self._signal.bump()

    # waiting -------------------------------------------------------------------------------

    async def wait(self, seen: int, timeout: float) -> None:
        await self._signal.wait(seen, timeout)

    async def _listen(self) -> None:
        """Bump the signal whenever any process adds to the all-jobs stream."""
        delay, last, lost = _BACKOFF[0], None, False
        while not self._closing:
            try:
                client = self._listen_client
                if client is None:
                    return
                if last is None:
                    last = f"{int(await client.get(self._keys.next) or 0)}-0"
                async with client.pipeline(transaction=False) as pipe:
                    pipe.xread({self._keys.all: last}, count=1, block=_BLOCK_MS)
                    pipe.get(self._keys.next)
                    woke, newest = await pipe.execute()
                if lost:
                    lost = False
                    _log.info("reconnected to Redis at %s", self.safe_url)
                    self._signal.bump()  # readers re-read: things changed while we were away
                delay = _BACKOFF[0]
                if woke:
                    last = f"{int(newest or 0)}-0"
                    self._signal.bump()
            except (RedisError, OSError) as exc:
                if self._closing:
                    return
                if not lost:
                    _log.warning("lost Redis at %s (%s); reconnecting", self.safe_url, exc)
                lost, last = True, None  # a restarted server may count from a new place
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, _BACKOFF[1])

    # retention -----------------------------------------------------------------------------

    async def _auto_gc(self) -> None:
        """Apply the URL's retention; housekeeping never fails the append that triggered it."""
        try:
            await self.gc(self.retention)
        except StoreError as exc:  # retention is housekeeping: it never fails an append
            _log.warning("automatic retention on %s failed: %s", self.safe_url, exc)

    async def gc(self, retention: Retention) -> GcReport:
        cutoff = keep_days_cutoff(retention, time.time())
        jobs_removed = events_removed = 0
        async with self._errors():
            client = self._client()
            ranked: list[tuple[bytes, float]] = await client.zrevrange(  # type: ignore[assignment]
                self._keys.jobs, 0, -1, withscores=True
            )
            for rank, (raw_id, started) in enumerate(ranked):
                job_id = raw_id.decode()
                too_many = retention.keep_jobs is not None and rank >= retention.keep_jobs
                if too_many or started < cutoff:
                    keep = 0
                elif retention.max_events_per_job is not None:
                    keep = max(1, retention.max_events_per_job)
                else:
                    continue
                keys = [
                    self._keys.job(job_id),
                    self._keys.info(job_id),
                    self._keys.jobs,
                    self._keys.all,
                    self._keys.floor,
                ]
                removed, whole = await self._remove_script(keys=keys, args=[job_id, keep])
                events_removed += int(removed)
                jobs_removed += int(whole)
        if events_removed:
            self._signal.bump()
        return GcReport(jobs_removed=jobs_removed, events_removed=events_removed)

    # plumbing ------------------------------------------------------------------------------

    def _client(self) -> Redis:
        if self._redis is None:
            raise StoreError(f"{self.safe_url} is not open")
        return self._redis

    @contextlib.asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis at {self.safe_url}: {exc}") from exc


def check_event(event: Event) -> Event:
    """The event unchanged if its job id can name Redis keys safely; UsageError otherwise."""
    check_job_id(event.job_id)
    return event


def _check_page(after: int, limit: int) -> None:
    if after < 0:
        raise UsageError(f"invalid seq cursor {after}: must be 0 or more")
    if limit < 1:
        raise UsageError(f"invalid limit {limit}: must be 1 or more")


def _cursor(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


def _record(info: dict[bytes, bytes], first: _Entries) -> JobRecord:
    ended = info.get(b"ended_at")
    workflow, project = info.get(b"workflow"), info.get(b"project")
    return JobRecord(
        job_id=info[b"job_id"].decode(),
        workflow=workflow.decode() if workflow is not None else None,
        project=project.decode() if project is not None else None,
        status=info[b"status"].decode(),  # type: ignore[arg-type]
        started_at=float(info[b"started_at"]),
        ended_at=float(ended) if ended is not None else None,
        last_seq=int(info[b"last_seq"]),
        first_seq=int(first[0][0].split(b"-", 1)[0]) if first else 1,
    )
