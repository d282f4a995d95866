"""Clients that connect and never read: each is closed 4008 once its socket has taken nothing for
the stall timeout, whatever the backlog, and readers next to them get every event in order."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
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


async def wait_until_only(bridge: EventBusWebSocketBridge, firehose: int) -> None:
    async with asyncio.timeout(60):  # a bound for the test, not a timing assertion
        while bridge.stats().firehose_clients > firehose:
            await asyncio.sleep(0.1)


async def publish_backlog(served: Served) -> None:
    bus = served.services.bus
    for index in range(BACKLOG):
        kind = (
            WorkflowEvent.WORKFLOW_COMPLETED if index == BACKLOG - 1 else WorkflowEvent.HOOK_STARTED
        )
        await bus.publish(kind, job_id="big", data={"index": index, "pad": "p" * 4000})
    await bus.flush()


async def test_firehose_clients_that_never_read_are_closed_4008_and_readers_get_everything(
    tmp_path: Path,
) -> None:
    limits = BridgeLimits(stall_timeout=1.0, close_timeout=1.0)
    async with (
        open_services(store_url=f"sqlite://{tmp_path / 'events.db'}") as services,
        serve_in_process(services, limits=limits) as served,
    ):
        await publish_backlog(served)
        bridge: EventBusWebSocketBridge = served.app.state.bridge
        idlers = [await idle_client(served.port, "/ws/progress?after=0") for _ in range(IDLE)]
        try:
            async with connect(f"{served.ws}/ws/progress?after=0", max_size=2**20) as ws:
                reading = await read_all(ws, limit=BACKLOG)
                assert [m["data"]["index"] for m in reading.messages] == list(range(BACKLOG))
                await wait_until_only(bridge, firehose=1)  # the reader alone is left
            stats = bridge.stats()
            assert stats.slow_consumer_closes >= IDLE and stats.queued == 0
        finally:
            for writer in idlers:
                writer.close()


async def test_a_job_follower_that_never_reads_is_closed_4008(tmp_path: Path) -> None:
    limits = BridgeLimits(stall_timeout=1.0, close_timeout=1.0)
    async with (
        open_services(store_url=f"sqlite://{tmp_path / 'events.db'}") as services,
        serve_in_process(services, limits=limits) as served,
    ):
        await publish_backlog(served)
        bridge: EventBusWebSocketBridge = served.app.state.bridge
        idlers = [await idle_client(served.port, "/ws/progress/big") for _ in range(IDLE)]
        try:
            async with asyncio.timeout(60):
                while bridge.stats().job_clients:
                    await asyncio.sleep(0.1)
            assert bridge.stats().slow_consumer_closes >= IDLE
        finally:
            for writer in idlers:
                writer.close()
