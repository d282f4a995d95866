"""The uvicorn settings of `spruce serve`, through a real uvicorn and a real WebSocket client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from spruce.server import listen
from tests.conftest import free_port

pytestmark = pytest.mark.anyio


async def echo_headers(ws: WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(f"{text} {ws.headers.get('x-probe', '?')}")


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[listen.Server, int]]:
    port = free_port()
    app = Starlette(routes=[WebSocketRoute("/echo", echo_headers)])
    server = listen.Server(listen.config(app, host="127.0.0.1", port=port))
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield server, port
    finally:
        server.should_exit = True
        async with asyncio.timeout(15):
            await task


async def test_sockets_drop_the_handshake_once_open_and_the_app_still_sees_its_headers() -> None:
    async with (
        serving() as (server, port),
        connect(f"ws://127.0.0.1:{port}/echo", additional_headers={"X-Probe": "p1"}) as ws,
    ):
        await ws.send("hello")
        assert await ws.recv() == "hello p1"
        (protocol,) = server.server_state.connections
        assert isinstance(protocol, listen.LeanWebSocketProtocol)
        assert not hasattr(protocol, "request") and not hasattr(protocol, "response")
        assert protocol.ping_timer is not None  # keepalive pings still scheduled
        await ws.send("again")
        assert await ws.recv() == "again p1"
