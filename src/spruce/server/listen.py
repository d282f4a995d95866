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
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from spruce.errors import UsageError

PING_INTERVAL: Final = 20.0  # seconds between keepalive pings to each WebSocket client
PING_TIMEOUT: Final = 20.0  # a client that does not answer a ping in time is closed (1011)
MAX_MESSAGE: Final = 64 * 1024  # clients send nothing large


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


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, minus the opening handshake's parsed request and
    response once the handshake is done: uvicorn keeps both for the life of every connection
    (some 1.5 KB of each of 1,000s of sockets), while the app reads the headers from its scope."""

    def start_keepalive(self) -> None:
        # Called once, right after the accepting response was written: the last use of both.
        super().start_keepalive()
        self.__dict__.pop("request", None)
        self.__dict__.pop("response", None)


def config(app: ASGIApp, *, host: str, port: int, log_level: str = "warning") -> uvicorn.Config:
    """uvicorn settings: the sans-I/O WebSocket protocol (lean, as above) without compression
    (small per connection), keepalive pings, small messages, a bounded graceful shutdown."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=LeanWebSocketProtocol,
        ws_per_message_deflate=False,
        ws_ping_interval=PING_INTERVAL,
        ws_ping_timeout=PING_TIMEOUT,
        ws_max_size=MAX_MESSAGE,
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
