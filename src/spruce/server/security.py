"""Who may talk to the server: bind rules, the token, exact Origin matching, size limits on the
request head and body.

A loopback bind is open to local clients; any other bind needs a token.  Browsers are kept from
driving the server from other sites by matching Origin exactly against the server's own origins.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spruce.errors import UsageError

TOKEN_ENV: Final = "SPRUCE_TOKEN"
MAX_BODY_BYTES: Final = 64 * 1024
MAX_TARGET: Final = 8 * 1024  # bytes of path and query: past it, 414
MAX_HEADERS: Final = 8 * 1024  # bytes of header names and values (or 100 fields): past it, 431
MAX_HEADER_FIELDS: Final = 100
_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token: anyone on the network could run code."""
    if not is_loopback(host) and not token:
        raise UsageError(
            f"refusing to listen on {host} without a token: pass --token or set {TOKEN_ENV}"
        )


def own_origins(host: str, port: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """The origins a page served by this server has; browsers send one of them, exactly."""
    hosts = {host.strip("[]")}
    if is_loopback(host) or host in ("0.0.0.0", "::"):
        hosts |= {"127.0.0.1", "localhost", "::1"}
    origins = {f"http://{_bracket(name)}:{port}" for name in hosts}
    return frozenset(origins | {origin.rstrip("/") for origin in extra})


def _bracket(name: str) -> str:
    return f"[{name}]" if ":" in name else name


@dataclass(frozen=True)
class Guard:
    """The server's access rules, checked on every request and WebSocket handshake."""

    token: str | None = None
    origins: frozenset[str] = field(default_factory=frozenset)

    def origin_allowed(self, headers: Mapping[str, str]) -> bool:
        """No Origin (a non-browser client) passes; a browser's Origin must match exactly."""
        origin = headers.get("origin")
        return origin is None or origin in self.origins

    def token_ok(self, headers: Mapping[str, str], query_string: bytes) -> bool:
        """The token from `Authorization: Bearer` or `?token=`, compared in constant time."""
        if not self.token:
            return True
        given = ""
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            given = value.strip()
        else:
            values = parse_qs(query_string.decode("latin-1")).get("token")
            given = values[-1] if values else ""
        return hmac.compare_digest(given.encode(), self.token.encode())


class BodyLimitMiddleware:
    """Answer 413 to any HTTP request whose body is larger than `limit` bytes."""

    def __init__(self, app: ASGIApp, *, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine of its own: a WebSocket's session then keeps no frame of ours alive.
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._limited(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(self.limit)(scope, receive, send)


class _BodyTooLarge(Exception):
    """A streamed body went past the limit."""


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"error": f"request body larger than {limit} bytes"}, status_code=413)


_PUBLIC_PATHS: Final = frozenset({"/", "/healthz", "/favicon.ico"})
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def head_problem(scope: Scope) -> tuple[int, str] | None:
    """414 for a request target longer than MAX_TARGET, 431 for headers past MAX_HEADERS."""
    target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"])
    if target > MAX_TARGET:
        return 414, f"request target longer than {MAX_TARGET} bytes"
    headers = scope["headers"]
    if len(headers) > MAX_HEADER_FIELDS or sum(len(k) + len(v) for k, v in headers) > MAX_HEADERS:
        return 431, f"request headers larger than {MAX_HEADERS} bytes or {MAX_HEADER_FIELDS} fields"
    return None


class GuardMiddleware:
    """Applies a Guard to every request: head size (414/431), Host, token (401), Origin on writes
    and handshakes (403).  The head is checked first: an oversized one is refused at once.

    The dashboard's static files and /healthz need no token; the page reads it from its URL.
    """

    def __init__(self, app: ASGIApp, *, guard: Guard, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.guard = guard
        self.hosts = hosts  # None: any Host header (a token guards a public bind)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine of its own: a WebSocket's session then keeps no frame of ours alive.
        if scope["type"] not in ("http", "websocket"):
            return self.app(scope, receive, send)
        problem = head_problem(scope) or self._problem(scope)
        if problem is None:
            return self.app(scope, receive, send)
        if scope["type"] == "http":
            # An oversized head may come again on a kept-alive connection: close it.
            closing = {"Connection": "close"} if problem[0] in (414, 431) else None
            response = JSONResponse({"error": problem[1]}, status_code=problem[0], headers=closing)
            return response(scope, receive, send)
        return _deny_websocket(scope, receive, send, *problem)

    def _problem(self, scope: Scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        path: str = scope["path"]
        if self.hosts is not None and _host_name(headers.get("host", "")) not in self.hosts:
            return 403, "unexpected Host header"
        if not (path in _PUBLIC_PATHS or path.startswith("/static/")) and not (
            self.guard.token_ok(headers, scope.get("query_string", b""))
        ):
            return 401, "missing or wrong token"
        if (
            scope["type"] == "websocket" or scope.get("method", "GET") not in _SAFE_METHODS
        ) and not self.guard.origin_allowed(headers):
            return 403, "cross-origin request refused"
        return None


def _host_name(host: str) -> str:
    """The host part of a Host header: `[::1]:8675` -> `::1`, `localhost:80` -> `localhost`."""
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    return host.rpartition(":")[0].lower() if ":" in host else host.lower()


def loopback_hosts(host: str) -> frozenset[str] | None:
    """The Host names a loopback server answers (DNS-rebinding guard); None for public binds."""
    if not is_loopback(host):
        return None
    return frozenset({"localhost", "127.0.0.1", "::1", host.strip("[]").lower()})


async def _deny_websocket(
    scope: Scope, receive: Receive, send: Send, status: int, text: str
) -> None:
    """Refuse a handshake with an HTTP status (403 when the server cannot send a body)."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        body = JSONResponse({"error": text}, status_code=status)
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": body.raw_headers})  # fmt: skip
        await send({"type": "websocket.http.response.body", "body": body.body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": text})
