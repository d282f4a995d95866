"""Oversized request heads against a real `spruce serve`: each is answered at once (414 for the
request target, 431 or 400 for the headers) and its socket closed, before any token check."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import ServeProcess, start_serve, stop

pytestmark = pytest.mark.anyio
CONNECTIONS = 300
UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    """`spruce serve` with a token: the oversized heads must be refused before it is checked."""
    served = start_serve(f"sqlite://{tmp_path / 'events.db'}", "--token", "s3cret")
    try:
        yield served
    finally:
        stop(served.proc)


def long_target(port: int, size: int) -> bytes:
    return (
        f"GET /ws/progress?after=0&pad={'a' * size} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"{UPGRADE}\r\n"
    ).encode()


def big_headers(port: int, size: int) -> bytes:
    padding = "".join(f"X-Pad-{i}: {'b' * 200}\r\n" for i in range(size // 210))
    return (
        f"GET /ws/progress/j1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{padding}{UPGRADE}\r\n"
    ).encode()


def long_http_target(port: int, size: int) -> bytes:
    return f"GET /api/jobs?pad={'c' * size} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def answer(port: int, request: bytes) -> tuple[int, bool]:
    """Send one request head; the status answered and whether the server then closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(20):  # a bound for the test, not a timing assertion
            head = await reader.readuntil(b"\r\n")
            await reader.read()  # to EOF: the server closed its side
        return int(head.split()[1]), True
    except TimeoutError:
        return 0, False
    finally:
        writer.close()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def test_oversized_request_heads_are_answered_at_once_and_closed(
    server: ServeProcess,
) -> None:
    port = server.port
    before = open_fds(server.proc.pid)
    requests = []
    for index in range(CONNECTIONS):
        size = 9_000 if index % 2 else 40_000
        kind = index % 3
        if kind == 0:
            requests.append((long_target(port, size), {414, 400}))
        elif kind == 1:
            requests.append((big_headers(port, size), {431, 400}))
        else:
            requests.append((long_http_target(port, size), {414, 400}))
    answers = await asyncio.gather(*(answer(port, request) for request, _ in requests))
    unanswered = sum(1 for status, _ in answers if status == 0)
    assert unanswered == 0, f"{unanswered} of {CONNECTIONS} oversized heads got no answer"
    for (_, allowed), (status, closed) in zip(requests, answers, strict=True):
        assert status in allowed and closed
    assert any(status == 414 for status, _ in answers)
    assert any(status == 431 for status, _ in answers)
    await asyncio.sleep(0.5)
    assert open_fds(server.proc.pid) <= before + 5  # no socket held after its answer
