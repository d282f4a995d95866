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
from spruce.server.bridge import _send_now
from tests.conftest import free_port

pytestmark = pytest.mark.anyio


async def echo_headers(ws: WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(f"{text} {ws.headers.get('x-probe', '?')}")


@contextlib.asynccontextmanager
async def serving(app: Starlette | None = None) -> AsyncIterator[tuple[listen.Server, int]]:
    port = free_port()
    app = app or Starlette(routes=[WebSocketRoute("/echo", echo_headers)])
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


async def test_the_app_sees_the_handshake_headers() -> None:
    async with (
        serving() as (_, port),
        connect(f"ws://127.0.0.1:{port}/echo", additional_headers={"X-Probe": "p1"}) as ws,
    ):
        await ws.send("hello")
        assert await ws.recv() == "hello p1"
        await ws.send("again")
        assert await ws.recv() == "again p1"


async def flood(ws: WebSocket) -> None:
    """Send big frames with `_send_now` until the socket would wait, then "end" with a wait."""
    await ws.accept()
    await ws.receive_text()  # the client paused its reading: start
    index = 0
    while index < 2000 and _send_now(ws, f"{index}:" + "x" * 60_000):
        index += 1
    await ws.send_text(f"end {index}")
    await ws.receive_text()


async def test_a_send_that_would_wait_for_a_paused_socket_sends_nothing() -> None:
    # The bridge sends to 1,000s of sockets inline and hands the paused ones to a task: it
    # relies on the server waiting for room *before* it writes a frame.
    app = Starlette(routes=[WebSocketRoute("/flood", flood)])
    async with (
        serving(app) as (_, port),
        connect(f"ws://127.0.0.1:{port}/flood", max_queue=1, max_size=2**20) as ws,
    ):
        await ws.send("go")
        await asyncio.sleep(1.0)  # the client reads nothing: kernel buffers fill
        texts = [str(await ws.recv())]
        while not texts[-1].startswith("end"):
            texts.append(str(await ws.recv()))
        sent = len(texts) - 1
        assert 0 < sent < 2000, "the socket never paused"
        assert texts[-1] == f"end {sent}"
        assert [text.split(":")[0] for text in texts[:-1]] == [str(i) for i in range(sent)]
        await ws.send("bye")
