"""Clients that connect and never read: each is closed 4008 once its socket has taken nothing for
the stall timeout, whatever the backlog, and readers next to them get every event in order."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from spruce.container import open_services
from spruce.events import WorkflowEvent
from spruce.server.bridge import BridgeLimits, EventBusWebSocketBridge
from tests.server.conftest import Served, read_all, serve_in_process

pytestmark = pytest.mark.anyio
IDLE = 20
BACKLOG = 1500  # events of ~4 KB: more than a socket's kernel buffers take unread (4 MB)


async def idle_client(port: int, path: str) -> asyncio.StreamWriter:
    """Open a WebSocket with a small receive buffer, then never read again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n", 1)[0]
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    return writer


async def publish_backlog(served: Served) -> None:
    bus = served.services.bus
    for index in range(BACKLOG):
        kind = (
            WorkflowEvent.WORKFLOW_COMPLETED if index == BACKLOG - 1 else WorkflowEvent.HOOK_STARTED
        )
        await bus.publish(kind, job_id="big", data={"index": index, "pad": "p" * 4000})
    await bus.flush()


@contextlib.asynccontextmanager
async def idle_clients(tmp_path: Path, path: str) -> AsyncIterator[Served]:
    """A server on a SQLite log with a big backlog, and IDLE clients of `path` that never read."""
    limits = BridgeLimits(stall_timeout=1.0, close_timeout=1.0)
    async with (
        open_services(store_url=f"sqlite://{tmp_path / 'events.db'}") as services,
        serve_in_process(services, limits=limits) as served,
    ):
        await publish_backlog(served)
        idlers = [await idle_client(served.port, path) for _ in range(IDLE)]
        try:
            yield served
        finally:
            for writer in idlers:
                writer.close()


async def wait_until_gone(bridge: EventBusWebSocketBridge, *, leaving: int) -> None:
    """Until only `leaving` clients are left; every idle one must have been closed 4008."""
    async with asyncio.timeout(60):  # a bound for the test, not a timing assertion
        while bridge.stats().firehose_clients + bridge.stats().job_clients > leaving:
            await asyncio.sleep(0.1)
    stats = bridge.stats()
    assert stats.slow_consumer_closes >= IDLE and stats.queued == 0


async def test_firehose_clients_that_never_read_are_closed_4008_and_readers_get_everything(
    tmp_path: Path,
) -> None:
    async with idle_clients(tmp_path, "/ws/progress?after=0") as served:
        reader = connect(f"{served.ws}/ws/progress?after=0", max_size=2**20)
        async with reader as ws:
            reading = await read_all(ws, limit=BACKLOG)
            assert [m["data"]["index"] for m in reading.messages] == list(range(BACKLOG))
            await wait_until_gone(served.app.state.bridge, leaving=1)  # the reader is left


async def test_job_followers_that_never_read_are_closed_4008(tmp_path: Path) -> None:
    async with idle_clients(tmp_path, "/ws/progress/big") as served:
        await wait_until_gone(served.app.state.bridge, leaving=0)
