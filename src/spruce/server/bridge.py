"""EventBusWebSocketBridge: one bus subscriber routing each event to the WebSocket clients of its
job.

A joining client registers its bounded queue first (live events start to collect), then reads the
log after its cursor, then drains the queue dropping what it already sent: no gap, no duplicate.
A client costs one task, its socket's own, parked in `receive()` once live so that a client going
away is noticed at once; live events are written from the routing task to every ready socket,
and a sender task exists only while a client has a backlog (a paused socket, a gap to fill).

What one client can hold is bounded whatever the log's size: the replay reads the log a small
page at a time, and a socket that takes nothing for `stall_timeout` seconds (a client that does
not read) is closed 4008, as is one whose queue of live events fills up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import Any, Final, Generic, TypeVar, cast

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from spruce.bus import Subscription, WorkflowEventBus
from spruce.errors import CursorReset, StoreError, UsageError
from spruce.events import Event, encode_event
from spruce.store.base import EventLog, tail_all

_log: Final = logging.getLogger("spruce.server.bridge")
_T = TypeVar("_T")
_R = TypeVar("_R")
_JobItem = tuple[int, bool, str]  # seq, is_end, the event's wire JSON (one str shared by clients)
_FireItem = tuple[str, str, int, str]  # cursor, job_id, seq, wire JSON with the cursor added
_GONE: Final = 0  # close_code of a client whose socket went away: nothing left to close
_LIVE: Final = -1  # the replay is done and the client stays: live events follow
# A failing read is tried again after each of these pauses (a pooled connection that a store
# restart left stale fails once), then the client is closed 1013.
_STORE_RETRY_DELAYS: Final = (0.1, 0.5, 1.5)


class CloseCode(IntEnum):
    """Why the server closed a progress socket; clients decide from it whether to reconnect."""

    DONE = 1000  # the job's end event was sent: nothing more will come
    GOING_AWAY = 1001  # the server is stopping: reconnect with `after` later
    INTERNAL = 1011  # the server failed: reconnect with `after`
    TRY_AGAIN = 1013  # the connection limit is reached, or the event log cannot be read: later
    SLOW_CONSUMER = 4008  # the client fell behind its queue: reconnect with `after`
    BAD_REQUEST = 4400  # a malformed job id or cursor: do not retry
    UNKNOWN_JOB = 4404  # no such job in the event log (or no longer: the store lost it)
    CURSOR_RESET = 4410  # retention removed events after the cursor: restart from the earliest


@dataclass(frozen=True)
class BridgeLimits:
    """Per-client queue size, connection limit, replay page, and the bridge's timers (seconds)."""

    queue_size: int = 1024
    max_clients: int = 2000
    resync_after: float = 15.0  # live job clients behind the log catch up this often: a safety net
    close_timeout: float = 5.0
    stall_timeout: float = 20.0  # a socket that takes nothing this long is a slow consumer (4008)
    replay_page: int = 64  # events a replay reads at a time: what a stalled replay holds
    replay_reads: int = 4  # replay pages read at once, whatever the number of clients joining


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
    """One socket: its bounded queue of live items, its session task, the close asked for.

    The session task (uvicorn's, serving the socket) sits in `receive()` once live; queued items
    are sent by a sender task that exists only while the queue is not empty.  Thousands of idle
    clients thus cost one task each and no timer.
    """

    __slots__ = ("close_code", "close_reason", "items", "live", "sender", "session", "ws")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.items: list[_T] = []
        self.live = False  # the replay is done: live items go to a sender task
        self.session: asyncio.Task[object] | None = None
        self.sender: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.close_reason = ""


class _JobClient(_Client[_JobItem]):
    __slots__ = ("job_id", "last")

    def __init__(self, ws: WebSocket, job_id: str, after: int) -> None:
        super().__init__(ws)
        self.job_id = job_id
        self.last = after  # the last seq sent


class _FireClient(_Client[_FireItem]):
    __slots__ = ("after", "floor", "sent")

    def __init__(self, ws: WebSocket, after: str | None) -> None:
        super().__init__(ws)
        self.after = after
        self.floor: tuple[int, ...] | None = None  # the replay's last cursor, when orderable
        # job -> last seq sent by the replay, to drop the overlap; None once past it
        self.sent: dict[str, int] | None = {}


class EventBusWebSocketBridge:
    """Routes bus events to per-job WebSocket clients and log events to firehose clients."""

    def __init__(
        self, bus: WorkflowEventBus, log: EventLog, *, limits: BridgeLimits | None = None
    ) -> None:
        self.bus = bus
        self.log = log
        self.limits = limits or BridgeLimits()
        self._jobs: dict[str, set[_JobClient]] = {}
        self._firehose: set[_FireClient] = set()
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connections = 0
        self._rejected = 0
        self._slow = 0
        self._routed = 0
        # Pages read but not yet sent are what 1,000 clients joining at once would pile up.
        self._replay_reads = asyncio.Semaphore(self.limits.replay_reads)

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to the bus and start following the log's all-jobs stream from now."""
        if self._subscription is None:
            self._subscription = self.bus.subscribe(None, self._on_event, name="websocket-bridge")
            head = await self.log.head()
            self._tasks = [
                asyncio.create_task(self._follow(head), name="spruce-firehose"),
                asyncio.create_task(self._resync(), name="spruce-bridge-resync"),
            ]

    async def aclose(self) -> None:
        """Close every client with 1001 and stop routing."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        clients: list[_Client[Any]] = [c for group in self._jobs.values() for c in group]
        clients += self._firehose
        sessions = [self._stop(c, CloseCode.GOING_AWAY, "server stopping") for c in clients]
        tasks = [task for task in sessions if task is not None]
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
            self._push(client, item)

    def _push(self, client: _JobClient, item: _JobItem) -> None:
        """Send a live event from this task when the client is ready for exactly it (the
        usual case: no task switch per client), else queue it for the client's sender."""
        seq, is_end, text = item
        ready = client.live and client.sender is None and not client.items
        if not ready or seq != client.last + 1 or client.close_code is not None:
            self._offer(client, item)
            return
        try:
            sent = _send_now(client.ws, text)
        except Exception as exc:
            self._stop(client, *_failure(exc))
            return
        if not sent:  # the socket is paused: a sender waits for it, later events queue
            self._offer(client, item)
            return
        client.last = seq
        if is_end:
            self._stop(client, CloseCode.DONE, "job ended")

    async def _follow(self, after: str | None) -> None:
        async for cursor, event in tail_all(self.log, after=after):
            if self._firehose:
                item: _FireItem = (cursor, event.job_id, event.seq, _with_cursor(cursor, event))
                for client in list(self._firehose):
                    self._push_fire(client, item)

    def _push_fire(self, client: _FireClient, item: _FireItem) -> None:
        """As `_push`: sent from this task when the client is ready, else queued."""
        ready = client.live and client.sender is None and not client.items
        if not ready or client.sent is not None or client.close_code is not None:
            self._offer(client, item)
            return
        try:
            sent = _send_now(client.ws, item[3])
        except Exception as exc:
            self._stop(client, *_failure(exc))
            return
        if not sent:
            self._offer(client, item)

    async def _resync(self) -> None:
        """A safety net: live job clients behind the log (an event the bus never handed over,
        e.g. a lost end event) re-read it.  One timer for all clients, one read per job.

        Only events the log held at the previous pass count: one stored a moment ago may still
        be on its way through the bus, and 1,000 clients re-reading the log for it at once
        would queue up behind that read instead of getting it live."""
        stored_before: dict[str, int] = {}
        while True:
            await asyncio.sleep(self.limits.resync_after)
            stored_now: dict[str, int] = {}
            for job_id, clients in list(self._jobs.items()):
                try:
                    record = await self.log.get_job(job_id)
                except Exception as exc:
                    _log.warning("resync of job %s failed: %s", job_id, exc)
                    continue
                if record is None:  # e.g. a store without persistence restarted: never silence
                    for client in list(clients):
                        if client.live:
                            gone = f"job {job_id} is no longer in the event log"
                            self._stop(client, CloseCode.UNKNOWN_JOB, gone)
                    continue
                stored_now[job_id] = record.last_seq
                due = min(record.last_seq, stored_before.get(job_id, 0))
                if record.status != "running":
                    due = record.last_seq  # nothing more comes: the end must reach everyone
                ask: _JobItem = (due, False, "")  # no text: read it from the log
                for client in list(clients):
                    if client.live and client.sender is None and client.last < due:
                        self._offer(client, ask)
            stored_before = stored_now

    def _offer(self, client: _Client[_T], item: _T) -> None:
        if client.close_code is not None:
            return
        if len(client.items) >= self.limits.queue_size:
            # Never wait for a slow socket: drop its queue, close it, let it resume by cursor.
            self._slow += 1
            client.items.clear()
            self._stop(client, CloseCode.SLOW_CONSUMER, "slow consumer")
            return
        client.items.append(item)
        if client.live and client.sender is None:
            client.sender = asyncio.create_task(self._send_live(client))

    def _stop(self, client: _Client[Any], code: int, reason: str) -> asyncio.Task[object] | None:
        """Ask a client's session to close with `code`; returns the session task to wait for."""
        if client.close_code is None:
            client.close_code, client.close_reason = code, reason
            current = asyncio.current_task()
            for task in (client.sender, client.session):
                if task is not None and task is not current:
                    task.cancel()
        return client.session

    async def _send_live(self, client: _Client[Any]) -> None:
        """Send what is queued, then end: the sender lives only while the client has a backlog."""
        try:
            if isinstance(client, _JobClient):
                ended = await self._drain_job(client)
            else:
                ended = await self._drain_fire(cast(_FireClient, client))
            if ended:
                self._stop(client, CloseCode.DONE, "job ended")
        except Exception as exc:
            self._stop(client, *_failure(exc))
        finally:
            if client.sender is asyncio.current_task():
                client.sender = None

    # sessions ------------------------------------------------------------------------------

    def serve_job(self, ws: WebSocket, job_id: str, *, after: int) -> Coroutine[Any, Any, None]:
        """Stream one job's events after `after` to an accepted socket, then live, until its end.

        Returns the session to await (not a coroutine of its own: one frame less per socket).
        """
        return self._session(_JobClient(ws, job_id, after))

    def serve_firehose(self, ws: WebSocket, *, after: str | None) -> Coroutine[Any, Any, None]:
        """Stream every job's events after a log cursor to an accepted socket, then live."""
        return self._session(_FireClient(ws, after))

    async def _session(self, client: _Client[Any]) -> None:
        """Replay, then wait in `receive()` for the client to go away or the bridge to stop it.

        Runs in the socket's own task, the one long-lived task a client costs.
        """
        ws = client.ws
        if self._full():
            self._rejected += 1
            await self._close(ws, CloseCode.TRY_AGAIN, "too many connections")
            return
        self._register(client)
        self._connections += 1
        client.session = asyncio.current_task()
        try:
            if isinstance(client, _JobClient):
                code, reason = await self._replay_job(client)
            else:
                code, reason = await self._replay_fire(cast(_FireClient, client))
            if code == _LIVE:
                client.live = True  # no await since the queue was drained: nothing is left
                while (await ws.receive())["type"] != "websocket.disconnect":
                    pass  # clients have nothing to say; uvicorn caps the message size
                code, reason = _GONE, ""
        except asyncio.CancelledError:
            if client.close_code is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # the bridge's own stop signal, not a shutdown of the loop
            code, reason = client.close_code, client.close_reason
        except Exception as exc:
            code, reason = _failure(exc)
        finally:
            self._forget(client)
        if code != _GONE:
            client.close_code = code
            await self._close(ws, code, reason)

    def _full(self) -> bool:
        count = sum(len(group) for group in self._jobs.values()) + len(self._firehose)
        return count >= self.limits.max_clients

    def _register(self, client: _Client[Any]) -> None:
        # Registered before the replay reads the log: live events collect meanwhile (no gap).
        if isinstance(client, _JobClient):
            self._jobs.setdefault(client.job_id, set()).add(client)
        elif isinstance(client, _FireClient):
            self._firehose.add(client)

    def _forget(self, client: _Client[Any]) -> None:
        if client.close_code is None:
            client.close_code = _GONE
        client.live = False
        client.items.clear()
        if client.sender is not None:
            client.sender.cancel()
        if isinstance(client, _JobClient):
            group = self._jobs.get(client.job_id)
            if group is not None:
                group.discard(client)
                if not group:
                    del self._jobs[client.job_id]
        elif isinstance(client, _FireClient):
            self._firehose.discard(client)

    async def _close(self, ws: WebSocket, code: int, reason: str) -> None:
        # A client that never reads keeps the socket unwritable: give up after a grace period
        # (its buffers are bounded) rather than hold the task forever.
        # RuntimeError: the server closed the socket itself (WebSocketDisconnected is one).
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError, TimeoutError):
            async with asyncio.timeout(self.limits.close_timeout):
                await ws.close(code, reason)

    # streams -------------------------------------------------------------------------------

    async def _replay_job(self, client: _JobClient) -> tuple[int, str]:
        """Send the log after the client's cursor and what queued meanwhile; a close if done."""
        job_id = client.job_id
        if await self._read(partial(self.log.get_job, job_id)) is None and not client.items:
            return CloseCode.UNKNOWN_JOB, f"no job {job_id}"
        if await self._catch_up(client):
            return CloseCode.DONE, "job ended"
        record = await self._read(partial(self.log.get_job, job_id))
        if record is not None and record.status != "running" and client.last >= record.last_seq:
            return CloseCode.DONE, "job ended"
        if await self._drain_job(client):
            return CloseCode.DONE, "job ended"
        return _LIVE, ""

    async def _drain_job(self, client: _JobClient) -> bool:
        """Send the queued live events not sent yet; True once the end event went out."""
        ws = client.ws
        while client.items:
            batch, client.items = client.items, []
            for seq, is_end, text in batch:
                if seq <= client.last:
                    continue  # already sent from the log
                if seq > client.last + 1 or not text:  # a gap (the bus lagged) or a resync
                    if await self._catch_up(client):
                        return True
                    if seq <= client.last or not text:
                        continue
                await self._send(ws, text)
                client.last = seq
                if is_end:
                    return True
        return False

    async def _catch_up(self, client: _JobClient) -> bool:
        """Send the log's events after the client's last seq; True if the end event was sent."""
        limit = self.limits.replay_page
        while page := await self._read(
            partial(self.log.read, client.job_id, after=client.last, limit=limit)
        ):
            for event in page:
                await self._send(client.ws, encode_event(event).decode())
                client.last = event.seq
                if event.is_end:
                    return True
            del page  # not held while the next one is read
        return False

    async def _replay_fire(self, client: _FireClient) -> tuple[int, str]:
        position = client.after
        sent = client.sent
        assert sent is not None
        limit = self.limits.replay_page
        while page := await self._read(partial(self.log.read_all, after=position, limit=limit)):
            for cursor, event in page:
                await self._send(client.ws, _with_cursor(cursor, event))
                sent[event.job_id] = event.seq
                position = cursor
            del page  # not held while the next one is read
        client.floor = _cursor_key(position)
        await self._drain_fire(client)
        return _LIVE, ""

    async def _drain_fire(self, client: _FireClient) -> bool:
        """Send the queued events, dropping those the replay sent already."""
        while client.items:
            batch, client.items = client.items, []
            for cursor, job_id, seq, text in batch:
                if client.sent is not None:
                    key = _cursor_key(cursor)
                    if key is not None and client.floor is not None:
                        if key <= client.floor:
                            continue
                    elif seq <= client.sent.get(job_id, 0):
                        continue
                    client.sent = None  # past the overlap: everything from here on is new
                await self._send(client.ws, text)
        return False

    async def _send(self, ws: WebSocket, text: str) -> None:
        """Send one frame; _Stalled if the socket takes nothing for `stall_timeout` seconds."""
        if _send_now(ws, text):
            return
        try:
            async with asyncio.timeout(self.limits.stall_timeout):
                await ws.send_text(text)
        except TimeoutError:
            self._slow += 1
            raise _Stalled from None
        except WebSocketDisconnected:
            raise
        except RuntimeError as exc:
            raise _gone(exc) from exc

    async def _read(self, read: Callable[[], Awaitable[_R]]) -> _R:
        """A log read (one of `replay_reads` at a time), tried again after a failure or two
        before _StoreUnavailable."""
        for delay in _STORE_RETRY_DELAYS:
            try:
                async with self._replay_reads:
                    return await read()
            except StoreError as exc:
                _log.info("event log read failed, trying again in %ss: %s", delay, exc)
            await asyncio.sleep(delay)
        try:
            async with self._replay_reads:
                return await read()
        except StoreError as exc:
            raise _StoreUnavailable(str(exc)) from None


class _Stalled(Exception):
    """The socket took nothing for the stall timeout: its client does not read."""


class _StoreUnavailable(Exception):
    """The event log failed every read of a retry window."""


def _send_now(ws: WebSocket, text: str) -> bool:
    """Send `text` if the socket takes it without waiting; False, with nothing sent, if not.

    A send to a writable socket never waits, so fanning an event out to 1,000s of clients needs
    no task per client.  The ASGI server waits for a paused socket to drain *before* it writes
    (tests/server/test_listen.py holds it to that), so a send closed at that wait sent nothing.
    """
    send = ws.send_text(text)
    try:
        send.send(None)
    except StopIteration:
        return True
    except WebSocketDisconnected:
        raise
    except RuntimeError as exc:
        raise _gone(exc) from exc
    send.close()
    return False


def _gone(exc: RuntimeError) -> WebSocketDisconnected:
    """A send the server refused because it closed the socket itself (a keepalive ping went
    unanswered): the client is gone, not the server broken."""
    return WebSocketDisconnected(str(exc))


def _failure(exc: Exception) -> tuple[int, str]:
    """The close code and reason for a session that failed with `exc`."""
    if isinstance(exc, CursorReset):
        return CloseCode.CURSOR_RESET, f"cursor reset; earliest {exc.earliest}"
    if isinstance(exc, UsageError):
        return CloseCode.BAD_REQUEST, str(exc)[:120]
    if isinstance(exc, _Stalled):
        return CloseCode.SLOW_CONSUMER, "slow consumer"
    if isinstance(exc, _StoreUnavailable | StoreError):
        _log.warning("progress stream closed 1013: the event log is unavailable: %s", exc)
        return CloseCode.TRY_AGAIN, "event log unavailable; reconnect with after"
    if isinstance(exc, WebSocketDisconnect | WebSocketDisconnected | OSError):
        return _GONE, ""  # the socket is already gone
    _log.exception("progress stream failed", exc_info=exc)
    return CloseCode.INTERNAL, "internal error"


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
