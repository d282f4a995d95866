"""EventBusWebSocketBridge: one bus subscriber routing each event to the WebSocket clients of its
job.

A joining client registers its bounded queue first (live events start to collect), then reads the
log after its cursor, then drains the queue dropping what it already sent: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Generic, TypeVar

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from spruce.bus import Subscription, WorkflowEventBus
from spruce.errors import CursorReset, UsageError
from spruce.events import Event, encode_event
from spruce.store.base import EventLog, follow_all

_log: Final = logging.getLogger("spruce.server.bridge")
_T = TypeVar("_T")
_JobItem = tuple[int, bool, str]  # seq, is_end, the event's wire JSON (one str shared by clients)
_FireItem = tuple[str, str, int, str]  # cursor, job_id, seq, wire JSON with the cursor added
_GONE: Final = 0  # close_code of a client whose socket went away: nothing left to close


class CloseCode(IntEnum):
    """Why the server closed a progress socket; clients decide from it whether to reconnect."""

    DONE = 1000  # the job's end event was sent: nothing more will come
    GOING_AWAY = 1001  # the server is stopping: reconnect with `after` later
    INTERNAL = 1011  # the server failed: reconnect with `after`
    TRY_AGAIN = 1013  # the connection limit is reached: reconnect later
    SLOW_CONSUMER = 4008  # the client fell behind its queue: reconnect with `after`
    BAD_REQUEST = 4400  # a malformed job id or cursor: do not retry
    UNKNOWN_JOB = 4404  # no such job in the event log
    CURSOR_RESET = 4410  # retention removed events after the cursor: restart from the earliest


@dataclass(frozen=True)
class BridgeLimits:
    """Per-client queue size, connection limit, and the bridge's timers (seconds)."""

    queue_size: int = 1024
    max_clients: int = 2000
    resync_after: float = 15.0  # an idle job client re-reads the log this often: a safety net
    close_timeout: float = 5.0


@dataclass(frozen=True)
class BridgeStats:
    """What /metrics shows of the bridge."""

    job_clients: int
    firehose_clients: int
    connections: int
    rejected_full: int
    slow_consumer_closes: int
    routed: int
    queued: int


class _Client(Generic[_T]):
    """One socket's bounded queue, its wake-up, and the close the bridge asked for.

    A plain list swapped out whole and a bare future keep each of 1,000s of clients small.
    """

    __slots__ = ("close_code", "close_reason", "items", "pump", "waiter")

    def __init__(self) -> None:
        self.items: list[_T] = []
        self.waiter: asyncio.Future[None] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.pump: asyncio.Task[object] | None = None

    def put(self, item: _T) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self, timeout: float) -> list[_T]:
        """Every queued item, oldest first, waiting up to `timeout` for one; [] if none came."""
        if not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self.waiter
            except TimeoutError:
                pass
            finally:
                self.waiter = None
        batch, self.items = self.items, []
        return batch


class EventBusWebSocketBridge:
    """Routes bus events to per-job WebSocket clients and log events to firehose clients."""

    def __init__(
        self, bus: WorkflowEventBus, log: EventLog, *, limits: BridgeLimits | None = None
    ) -> None:
        self.bus = bus
        self.log = log
        self.limits = limits or BridgeLimits()
        self._jobs: dict[str, set[_Client[_JobItem]]] = {}
        self._firehose: set[_Client[_FireItem]] = set()
        self._subscription: Subscription | None = None
        self._follower: asyncio.Task[None] | None = None
        self._connections = 0
        self._rejected = 0
        self._slow = 0
        self._routed = 0

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to the bus and start following the log's all-jobs stream from now."""
        if self._subscription is None:
            self._subscription = self.bus.subscribe(None, self._on_event, name="websocket-bridge")
            head = await self.log.head()
            self._follower = asyncio.create_task(self._follow(head), name="spruce-firehose")

    async def aclose(self) -> None:
        """Close every client with 1001 and stop routing."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        clients = [c for group in self._jobs.values() for c in group]
        pumps = [self._stop(c, CloseCode.GOING_AWAY, "server stopping") for c in clients]
        pumps += [self._stop(c, CloseCode.GOING_AWAY, "server stopping") for c in self._firehose]
        tasks = [pump for pump in pumps if pump is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self.limits.close_timeout)

    def stats(self) -> BridgeStats:
        """A snapshot of the bridge's counters."""
        job_clients = [c for group in self._jobs.values() for c in group]
        return BridgeStats(
            job_clients=len(job_clients),
            firehose_clients=len(self._firehose),
            connections=self._connections,
            rejected_full=self._rejected,
            slow_consumer_closes=self._slow,
            routed=self._routed,
            queued=sum(len(c.items) for c in job_clients)
            + sum(len(c.items) for c in self._firehose),
        )

    # routing -------------------------------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        clients = self._jobs.get(event.job_id)
        if not clients:
            return
        item: _JobItem = (event.seq, event.is_end, encode_event(event).decode())
        self._routed += 1
        for client in list(clients):
            self._offer(client, item)

    async def _follow(self, after: str | None) -> None:
        while True:
            try:
                async for cursor, event in follow_all(self.log, after=after, poll=0.5):
                    after = cursor
                    if self._firehose:
                        item: _FireItem = (
                            cursor,
                            event.job_id,
                            event.seq,
                            _with_cursor(cursor, event),
                        )
                        for client in list(self._firehose):
                            self._offer(client, item)
            except CursorReset as exc:
                _log.warning("firehose follower: %s; resuming at the earliest event", exc)
                after = None
            except Exception as exc:  # a lost store connection: resume from the last cursor
                _log.warning("firehose follower failed (%s); retrying", exc)
                await asyncio.sleep(0.5)

    def _offer(self, client: _Client[_T], item: _T) -> None:
        if client.close_code is not None:
            return
        if len(client.items) >= self.limits.queue_size:
            # Never wait for a slow socket: drop its queue, close it, let it resume by cursor.
            self._slow += 1
            client.items.clear()
            self._stop(client, CloseCode.SLOW_CONSUMER, "slow consumer")
            return
        client.put(item)

    def _stop(self, client: _Client[_T], code: int, reason: str) -> asyncio.Task[object] | None:
        if client.close_code is None:
            client.close_code, client.close_reason = code, reason
            if client.pump is not None:
                client.pump.cancel()
        return client.pump

    # sessions ------------------------------------------------------------------------------

    async def serve_job(self, ws: WebSocket, job_id: str, *, after: int) -> None:
        """Stream one job's events after `after` to an accepted socket, then live, until its end."""
        if self._full():
            await self._refuse(ws)
            return
        client: _Client[_JobItem] = _Client()
        self._jobs.setdefault(job_id, set()).add(client)
        try:
            await self._session(ws, client, lambda: self._stream_job(ws, client, job_id, after))
        finally:
            group = self._jobs.get(job_id)
            if group is not None:
                group.discard(client)
                if not group:
                    del self._jobs[job_id]

    async def serve_firehose(self, ws: WebSocket, *, after: str | None) -> None:
        """Stream every job's events after a log cursor to an accepted socket, then live."""
        if self._full():
            await self._refuse(ws)
            return
        client: _Client[_FireItem] = _Client()
        self._firehose.add(client)
        try:
            await self._session(ws, client, lambda: self._stream_all(ws, client, after))
        finally:
            self._firehose.discard(client)

    def _full(self) -> bool:
        count = sum(len(group) for group in self._jobs.values()) + len(self._firehose)
        return count >= self.limits.max_clients

    async def _refuse(self, ws: WebSocket) -> None:
        self._rejected += 1
        await self._close(ws, CloseCode.TRY_AGAIN, "too many connections")

    async def _session(
        self,
        ws: WebSocket,
        client: _Client[_T],
        stream: Callable[[], Awaitable[tuple[int, str]]],
    ) -> None:
        """Pump events in this task while a watcher task notices the socket going away."""
        self._connections += 1
        client.pump = asyncio.current_task()
        watcher = asyncio.create_task(self._watch(ws, client))
        try:
            await self._pump(ws, client, stream)
        finally:
            watcher.cancel()

    async def _watch(self, ws: WebSocket, client: _Client[_T]) -> None:
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass  # clients have nothing to say; uvicorn caps the message size
        self._stop(client, _GONE, "")

    async def _pump(
        self, ws: WebSocket, client: _Client[_T], stream: Callable[[], Awaitable[tuple[int, str]]]
    ) -> None:
        try:
            code, reason = await stream()
        except asyncio.CancelledError:
            if client.close_code is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # the bridge's own stop signal, not a shutdown of the loop
            code, reason = client.close_code, client.close_reason
        except CursorReset as exc:
            code, reason = CloseCode.CURSOR_RESET, f"cursor reset; earliest {exc.earliest}"
        except UsageError as exc:
            code, reason = CloseCode.BAD_REQUEST, str(exc)[:120]
        except (WebSocketDisconnect, WebSocketDisconnected, OSError):
            return  # the socket is already gone
        except Exception:
            _log.exception("progress stream failed")
            code, reason = CloseCode.INTERNAL, "internal error"
        if client.close_code == _GONE:
            return
        client.close_code = code
        await self._close(ws, code, reason)

    async def _close(self, ws: WebSocket, code: int, reason: str) -> None:
        # A client that never reads keeps the socket unwritable: give up after a grace period
        # (its buffers are bounded) rather than hold the task forever.
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected, OSError, TimeoutError):
            async with asyncio.timeout(self.limits.close_timeout):
                await ws.close(code, reason)

    # streams -------------------------------------------------------------------------------

    async def _stream_job(
        self, ws: WebSocket, client: _Client[_JobItem], job_id: str, after: int
    ) -> tuple[int, str]:
        if await self.log.get_job(job_id) is None and not client.items:
            return CloseCode.UNKNOWN_JOB, f"no job {job_id}"
        last, ended = await self._catch_up(ws, job_id, after)
        record = await self.log.get_job(job_id)
        if ended or (record is not None and record.status != "running" and last >= record.last_seq):
            return CloseCode.DONE, "job ended"
        while True:
            batch = await client.take(self.limits.resync_after)
            if not batch:
                last, ended = await self._catch_up(ws, job_id, last)
                if ended:
                    return CloseCode.DONE, "job ended"
                continue
            for seq, is_end, text in batch:
                if seq <= last:
                    continue  # already sent from the log
                if seq > last + 1:  # a gap (the bus lagged): the log has what is missing
                    last, ended = await self._catch_up(ws, job_id, last)
                    if ended:
                        return CloseCode.DONE, "job ended"
                    if seq <= last:
                        continue
                await ws.send_text(text)
                last = seq
                if is_end:
                    return CloseCode.DONE, "job ended"

    async def _catch_up(self, ws: WebSocket, job_id: str, after: int) -> tuple[int, bool]:
        """Send the log's events after `after`; returns the last seq sent and whether it ended."""
        while True:
            page = await self.log.read(job_id, after=after)
            if not page:
                return after, False
            for event in page:
                await ws.send_text(encode_event(event).decode())
                after = event.seq
                if event.is_end:
                    return after, True

    async def _stream_all(
        self, ws: WebSocket, client: _Client[_FireItem], after: str | None
    ) -> tuple[int, str]:
        position = after
        sent: dict[str, int] = {}  # job -> last seq sent from the log, to drop the overlap
        while page := await self.log.read_all(after=position):
            for cursor, event in page:
                await ws.send_text(_with_cursor(cursor, event))
                sent[event.job_id] = event.seq
                position = cursor
        floor = _cursor_key(position)
        overlap = True
        while True:
            for cursor, job_id, seq, text in await client.take(self.limits.resync_after):
                if overlap:
                    key = _cursor_key(cursor)
                    if key is not None and floor is not None:
                        if key <= floor:
                            continue
                    elif seq <= sent.get(job_id, 0):
                        continue
                    overlap = False
                    sent.clear()
                await ws.send_text(text)


def _with_cursor(cursor: str, event: Event) -> str:
    """The event's wire JSON with its firehose cursor added (a new field, not a new shape)."""
    raw = encode_event(event)
    return (b'{"cursor":' + msgspec.json.encode(cursor) + b"," + raw[1:]).decode()


def _cursor_key(cursor: str | None) -> tuple[int, ...] | None:
    """An orderable form of numeric cursors ("17", "1700-3"); None when a cursor is opaque."""
    if cursor is None:
        return (0,)
    parts = cursor.split("-")
    if all(part.isdigit() for part in parts):
        return tuple(int(part) for part in parts)
    return None
