"""Running the app under uvicorn: the socket, the WebSocket settings, and signal handling."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Generator
from types import FrameType
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from spruce.errors import UsageError

PING_INTERVAL: Final = 20.0  # seconds between keepalive pings to each WebSocket client
PING_TIMEOUT: Final = 20.0  # a client that does not answer a ping in time is closed (1011)
MAX_MESSAGE: Final = 64 * 1024  # clients send nothing large
# A request head that arrives in pieces is refused (400) past this; a complete one reaches the
# app, whose guard answers 414/431 past security.MAX_TARGET / MAX_HEADERS.
MAX_HEAD: Final = 16 * 1024


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; UsageError naming the address if it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def config(app: ASGIApp, *, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    """uvicorn settings: wsproto for WebSockets without compression (small per connection), so
    that every handshake reaches the app, which answers or refuses it (the websockets-based
    protocol leaves a handshake it rejects unanswered); keepalive pings, small messages, a
    bounded request head, a bounded graceful shutdown."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="wsproto",
        ws_per_message_deflate=False,
        ws_ping_interval=PING_INTERVAL,
        ws_ping_timeout=PING_TIMEOUT,
        ws_max_size=MAX_MESSAGE,
        h11_max_incomplete_event_size=MAX_HEAD,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


class Server(uvicorn.Server):
    """uvicorn's server, with signals that stop it gracefully and are reported, not re-raised
    (uvicorn re-raises them, which would skip closing the event log)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stop_signal: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.stop_signal = sig
        self.should_exit = True
