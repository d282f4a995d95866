"""WorkflowEventBus: sequence each event, append it to the log, then fan it out to subscribers.

A batch the log refuses for a while (a full disk) is kept, with everything published after it,
and retried with backoff; only stored events reach subscribers. Past the retry window the job's
events go to a spill file that `spruce import` loads later, and `flush` raises
StoreUnavailableError naming the cause and the file.

Committed events land in one bounded ring; every subscriber reads the ring from its own position
in its own task, so a slow or stuck subscriber only falls behind (and, past the ring, loses
events that are counted) while the publisher and the other subscribers go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, Self

import anyio
import msgspec

from spruce.errors import SequenceConflictError, StoreError, StoreUnavailableError
from spruce.events import Event, WorkflowEvent, check_job_id, encode_event
from spruce.heartbeat import HEARTBEAT_EVERY, JobHeartbeats
from spruce.store.base import EventLog, follow_job, tail_all
from spruce.store.spill import SpillKeeper

Handler = Callable[[Event], None] | Callable[[Event], Awaitable[None]]

_log: Final = logging.getLogger("spruce.bus")
_BACKOFF: Final = (0.05, 2.0)  # first and longest pause between two tries of a refused batch
RETRY_WINDOW: Final = 60.0  # how long a refused batch is retried before it is spilled
_MAX_CALL_BATCH: Final = 4096


class BusStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of one bus since it started."""

    published: int
    ingested: int
    delivered: int
    dropped: int
    handler_errors: int
    handler_timeouts: int
    log_errors: int
    subscribers: int
    queue_depth: int


class Subscription:
    """One handler's place in the bus: its filter, its position in the ring, its task."""

    def __init__(
        self,
        bus: WorkflowEventBus,
        event_type: WorkflowEvent | None,
        handler: Handler,
        *,
        job_id: str | None,
        name: str,
        position: int,
    ) -> None:
        self.bus = bus
        self.event_type = event_type
        self.handler = handler
        self.job_id = job_id
        self.name = name
        self.position = position
        self.is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
        )
        self.delivered = 0
        self.dropped = 0
        self.errors = 0
        self.timeouts = 0
        self.closed = False
        self.busy = False  # a batch is taken from the ring and its handler calls are not done
        self.wakeup = asyncio.Event()
        self.limiter = anyio.CapacityLimiter(1)
        self.task: asyncio.Task[None] | None = None

    def matches(self, event: Event) -> bool:
        """Whether this subscription wants the event."""
        return (self.event_type is None or event.event is self.event_type) and (
            self.job_id is None or event.job_id == self.job_id
        )

    def close(self) -> None:
        """Unsubscribe; safe to call more than once."""
        self.bus.unsubscribe(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_encodable(event: Event) -> None:
    """TypeError if the event cannot travel as JSON: what `publish` refuses."""
    try:
        encode_event(event)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{event.event} data is not JSON-serialisable: {exc}") from None


class WorkflowEventBus:
    """The process's one event bus; build it in the composition root and pass it along."""

    def __init__(
        self,
        log: EventLog,
        *,
        ring_size: int = 65_536,
        max_pending: int = 65_536,
        handler_timeout: float = 5.0,
        retry_window: float = RETRY_WINDOW,
        spill_dir: Path | None = None,
        heartbeat_every: float = HEARTBEAT_EVERY,
    ) -> None:
        self.log = log
        self.handler_timeout = handler_timeout
        self.retry_window = retry_window
        # Set once a batch was refused for longer than the retry window and had to be spilled.
        self.log_unavailable = asyncio.Event()
        self._spill = SpillKeeper(spill_dir, stem="events")
        self._spilled_jobs: set[str] = set()
        self._outage_cause = ""
        self.heartbeats = JobHeartbeats(log, every=heartbeat_every)  # of the jobs it opened
        self._ring_size = ring_size
        self._max_pending = max_pending
        self._ring: list[Event] = []
        self._ring_base = 0
        self._pending: list[Event] = []
        self._inflight: list[Event] = []  # the batch the committer is storing now
        self._has_pending = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._seqs: dict[str, int] = {}
        self._local_jobs: set[str] = set()
        self._subs: dict[int, Subscription] = {}
        self._next_sub = 0
        self._committer: asyncio.Task[None] | None = None
        self._tailer: asyncio.Task[None] | None = None
        self._log_error: StoreError | None = None
        self._published = 0
        self._ingested = 0
        self._log_errors = 0
        self._closed_counts = [0, 0, 0, 0]  # delivered, dropped, errors, timeouts of gone subs

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the committer; publishing before this raises."""
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_loop(), name="spruce-bus-commit")
            self.heartbeats.start()

    async def aclose(self, *, timeout: float = 10.0) -> None:
        """Store what is pending, let subscribers catch up, then stop every task.

        A refused batch still has its retry window; what is left unstored after it is spilled.
        """
        with contextlib.suppress(TimeoutError, StoreError):
            await self.flush(timeout=timeout + self.retry_window)
        await self._drain_subscribers(timeout=min(timeout, 3.0))
        for sub in list(self._subs.values()):
            self.unsubscribe(sub)
        for task in (self._tailer, self._committer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tailer = self._committer = None
        await self.heartbeats.aclose()
        leftover, self._inflight, self._pending = self._inflight + self._pending, [], []
        if leftover:
            self._outage_cause = self._outage_cause or "the event log did not take them in time"
            self._write_spill(leftover)
        self._spill.close()

    @property
    def spill_path(self) -> Path | None:
        """The file holding the events the log refused past the retry window, if any."""
        return self._spill.path

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # subscribing ---------------------------------------------------------------------------

    def subscribe(
        self,
        event_type: WorkflowEvent | None,
        handler: Handler,
        *,
        job_id: str | None = None,
        name: str | None = None,
    ) -> Subscription:
        """Call `handler` for each new event of `event_type` (None: every event).

        Async handlers run in the subscriber's task with a per-call timeout; sync handlers run
        in a worker thread of their own, so a blocking one cannot stall the loop.  With
        `job_id`, only that job's events arrive and the subscription ends after its end event.
        """
        sub = Subscription(
            self,
            event_type,
            handler,
            job_id=job_id,
            name=name or str(getattr(handler, "__qualname__", repr(handler))),
            position=self._ring_base + len(self._ring),
        )
        key = self._next_sub
        self._next_sub += 1
        self._subs[key] = sub
        sub.task = asyncio.create_task(self._serve(sub), name=f"spruce-sub-{sub.name}")
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to a subscription and end its task."""
        if subscription.closed:
            return
        subscription.closed = True
        for key, sub in list(self._subs.items()):
            if sub is subscription:
                del self._subs[key]
        gone = self._closed_counts
        gone[0] += subscription.delivered
        gone[1] += subscription.dropped
        gone[2] += subscription.errors
        gone[3] += subscription.timeouts
        task = subscription.task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    # publishing ----------------------------------------------------------------------------

    async def publish(
        self,
        event_type: WorkflowEvent,
        *,
        job_id: str,
        step_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Event:
        """Give the event the job's next seq and queue it for the log; returns the event.

        Subscribers receive it once the log has stored it (see `flush`).
        """
        if self._committer is None:
            raise RuntimeError("WorkflowEventBus.start() was not awaited")
        if job_id not in self._seqs:
            check_job_id(job_id)
            last = await self.log.last_seq(job_id)
            self._seqs.setdefault(job_id, last)
            self._local_jobs.add(job_id)
            if last == 0 and event_type is WorkflowEvent.WORKFLOW_SESSION_INITIALIZING:
                # The first beat goes before the opening event: a stored job always has one.
                await self.heartbeats.begin(job_id)
        while len(self._pending) >= self._max_pending:
            self._has_room.clear()
            await self._has_room.wait()
        seq = self._seqs[job_id] + 1
        self._seqs[job_id] = seq
        event = Event(
            event=event_type,
            job_id=job_id,
            seq=seq,
            step_id=step_id,
            timestamp=time.time(),
            data=data if data is not None else {},
        )
        try:
            check_encodable(event)  # a bad payload fails here, for its caller, not in a batch
        except TypeError:
            self._seqs[job_id] = seq - 1
            raise
        self._pending.append(event)
        self._idle.clear()
        self._has_pending.set()
        self._published += 1
        return event

    publish_async = publish

    async def flush(self, *, timeout: float | None = None) -> None:
        """Wait until every published event is stored and handed to subscribers.

        Raises StoreError if the log refused events since the last flush (StoreUnavailableError
        when they had to be spilled).  The default timeout outlasts the retry window.
        """
        async with asyncio.timeout(timeout if timeout is not None else self.retry_window + 10.0):
            await self._idle.wait()
        error, self._log_error = self._log_error, None
        if error is not None:
            raise error

    def ingest(self, events: Sequence[Event]) -> None:
        """Hand events that another process already stored to this process's subscribers."""
        if events:
            self._ingested += len(events)
            self._deliver(events)

    def tail_log(self, *, after: str | None) -> None:
        """Follow the log's all-jobs stream from `after` and deliver other processes' events."""
        if self._tailer is None:
            self._tailer = asyncio.create_task(self._tail(after), name="spruce-bus-tail")

    def is_local(self, job_id: str) -> bool:
        """Whether this process publishes the job (so the tailer must not deliver it twice)."""
        return job_id in self._local_jobs

    # reading -------------------------------------------------------------------------------

    async def read(self, job_id: str, *, after: int = 0, limit: int = 1000) -> list[Event]:
        """Events of a job with seq > after, from the log."""
        return await self.log.read(job_id, after=after, limit=limit)

    def follow(self, job_id: str, *, after: int = 0) -> AsyncIterator[Event]:
        """A job's stored events after `after`, then live ones, until its end event."""
        return follow_job(self.log, job_id, after=after)

    def stats(self) -> BusStats:
        """A snapshot of the counters."""
        subs = list(self._subs.values())
        end = self._ring_base + len(self._ring)
        gone = self._closed_counts
        return BusStats(
            published=self._published,
            ingested=self._ingested,
            delivered=gone[0] + sum(s.delivered for s in subs),
            dropped=gone[1] + sum(s.dropped for s in subs),
            handler_errors=gone[2] + sum(s.errors for s in subs),
            handler_timeouts=gone[3] + sum(s.timeouts for s in subs),
            log_errors=self._log_errors,
            subscribers=len(subs),
            queue_depth=len(self._pending) + max((end - s.position for s in subs), default=0),
        )

    # internals -----------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await self._has_pending.wait()
            batch = self._pending
            self._pending = []
            self._has_pending.clear()
            self._has_room.set()
            self._inflight = batch
            stored = await self._store(batch)
            self._inflight = []
            for event in stored:
                if event.is_end:
                    self.heartbeats.ended(event.job_id)
            self._deliver(stored)
            if not self._pending:
                self._idle.set()

    async def _store(self, batch: list[Event]) -> list[Event]:
        """Append the batch, retrying a refusal until the window closes; the stored events.

        While this waits, later events queue behind it (publish blocks past max_pending), so
        the log receives every job's events in order or not at all.
        """
        if self._spilled_jobs:  # once a job's events are spilled, the rest follow them there
            self._write_spill([e for e in batch if e.job_id in self._spilled_jobs])
            batch = [e for e in batch if e.job_id not in self._spilled_jobs]
        if not batch:
            return []
        deadline = time.monotonic() + self.retry_window
        delay = _BACKOFF[0]
        refused_since: float | None = None
        while True:
            try:
                await self.log.append(batch)
            except SequenceConflictError:
                return await self._store_per_job(batch)
            except Exception as exc:  # the log's failure must not kill the committer
                if isinstance(exc, StoreError) and not isinstance(exc, StoreUnavailableError):
                    self._give_up(batch, exc)  # a read-only or corrupt file: waiting won't help
                    return []
                if refused_since is None:
                    refused_since = time.monotonic()
                    _log.warning(
                        "event log %s refused %d events (%s); holding them and retrying for up"
                        " to %.0fs",
                        self.log.url,
                        len(batch),
                        exc,
                        self.retry_window,
                    )
                if time.monotonic() + delay > deadline:
                    self._give_up(batch, exc)
                    return []
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF[1])
                continue
            if refused_since is not None:
                _log.warning(
                    "event log %s takes events again after %.1fs",
                    self.log.url,
                    time.monotonic() - refused_since,
                )
            return batch

    async def _store_per_job(self, batch: list[Event]) -> list[Event]:
        """Another process wrote at some job's seqs: store the other jobs' events.  A job this
        bus runs was ended by a reaper that thought it gone: its own events go to the spill
        file, whose import puts them in place of that end.  Any other job's are refused (a
        racing reaper), and its seq is read afresh before its next event."""
        by_job: dict[str, list[Event]] = {}
        for event in batch:
            by_job.setdefault(event.job_id, []).append(event)
        refused: set[str] = set()
        for job_id, events in by_job.items():
            try:
                await self.log.append(events)
            except Exception as exc:
                refused.add(job_id)
                if isinstance(exc, SequenceConflictError) and job_id in self.heartbeats:
                    self._give_up(events, exc)
                    continue
                self._log_errors += len(events)
                self._log_error = StoreError(f"event log {self.log.url} refused: {exc}")
                self._seqs.pop(job_id, None)
                _log.error("event log refused %d events of job %s: %s", len(events), job_id, exc)
        return [event for event in batch if event.job_id not in refused]

    def _give_up(self, batch: list[Event], exc: Exception) -> None:
        cause = str(exc) if isinstance(exc, StoreUnavailableError) else f"{self.log.url}: {exc}"
        if isinstance(exc, SequenceConflictError):
            cause = f"another process ended the job in {self.log.url} ({exc})"
        self._outage_cause = cause
        _log.error("event log unavailable: %s; the jobs' events go to a spill file", cause)
        self._spilled_jobs.update(e.job_id for e in batch)
        for job_id in self._spilled_jobs:
            self.heartbeats.abandon(job_id)
        self._write_spill(batch)
        self.log_unavailable.set()

    def _write_spill(self, events: list[Event]) -> None:
        if events:
            self._log_errors += len(events)
            self._spill.keep([encode_event(event) for event in events])
            cause = f"event log unavailable: {self._outage_cause}"
            self._log_error = StoreUnavailableError(cause + self._spill.describe(self.log.url))

    def _deliver(self, events: Sequence[Event]) -> None:
        self._ring.extend(events)
        excess = len(self._ring) - 2 * self._ring_size
        if excess > 0:
            cut = len(self._ring) - self._ring_size
            del self._ring[:cut]
            self._ring_base += cut
        for sub in self._subs.values():
            sub.wakeup.set()

    async def _serve(self, sub: Subscription) -> None:
        while not sub.closed:
            end = self._ring_base + len(self._ring)
            if sub.position >= end:
                sub.wakeup.clear()
                await sub.wakeup.wait()
                continue
            sub.busy = True
            try:
                batch = self._take(sub)
                if batch:
                    await self._call(sub, batch)
            finally:
                sub.busy = False
            if sub.job_id is not None and any(e.is_end for e in batch):
                self.unsubscribe(sub)

    def _take(self, sub: Subscription) -> list[Event]:
        """The subscriber's next batch from the ring, filtered; moves its position past it."""
        start = sub.position - self._ring_base
        if start < 0:
            sub.dropped -= start
            _log.warning("subscriber %s fell behind; %d events dropped", sub.name, -start)
            start = 0
        batch = self._ring[start : start + _MAX_CALL_BATCH]
        sub.position = self._ring_base + start + len(batch)
        if sub.event_type is not None or sub.job_id is not None:
            batch = [event for event in batch if sub.matches(event)]
        return batch

    async def _call(self, sub: Subscription, batch: list[Event]) -> None:
        if sub.is_async:
            for event in batch:
                try:
                    async with asyncio.timeout(self.handler_timeout):
                        await sub.handler(event)  # type: ignore[misc]
                    sub.delivered += 1
                except TimeoutError:
                    sub.timeouts += 1
                    _log.warning("subscriber %s timed out on %s", sub.name, event.event)
                except Exception:
                    self._handler_failed(sub, event)
            return
        with anyio.move_on_after(self.handler_timeout) as scope:
            await anyio.to_thread.run_sync(
                self._call_sync, sub, batch, limiter=sub.limiter, abandon_on_cancel=True
            )
        if scope.cancelled_caught:
            sub.timeouts += 1
            _log.warning("subscriber %s is blocked for over %.1fs", sub.name, self.handler_timeout)

    def _call_sync(self, sub: Subscription, batch: list[Event]) -> None:
        handler = sub.handler
        for event in batch:
            if sub.closed:
                return
            try:
                handler(event)
                sub.delivered += 1
            except Exception:
                self._handler_failed(sub, event)

    def _handler_failed(self, sub: Subscription, event: Event) -> None:
        sub.errors += 1
        # The first failures are logged in full; later ones only now and then, not per event.
        if sub.errors <= 3:
            _log.exception("subscriber %s failed on %s", sub.name, event.event)
        elif sub.errors % 10_000 == 0:
            _log.error("subscriber %s has failed %d times", sub.name, sub.errors)

    async def _drain_subscribers(self, *, timeout: float) -> None:
        end = self._ring_base + len(self._ring)
        deadline = time.monotonic() + timeout
        for sub in list(self._subs.values()):
            while (
                not sub.closed and (sub.busy or sub.position < end) and time.monotonic() < deadline
            ):
                await asyncio.sleep(0.005)

    async def _tail(self, after: str | None) -> None:
        async for _cursor, event in tail_all(self.log, after=after):
            if event.job_id not in self._local_jobs:
                self.ingest([event])
