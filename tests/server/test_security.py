"""Access rules: exact origins, loopback binds, the token, refused WebSocket handshakes."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from spruce.errors import UsageError
from spruce.server.security import Guard, check_bind, is_loopback, own_origins
from tests.server.conftest import memory_server, watch
from tests.server.test_bridge import publish_job


def test_own_origins_are_the_loopback_names_on_the_servers_port() -> None:
    origins = own_origins("127.0.0.1", 8675)
    assert origins == {"http://127.0.0.1:8675", "http://localhost:8675", "http://[::1]:8675"}


def test_origin_matching_is_exact_not_a_prefix() -> None:
    guard = Guard(origins=own_origins("127.0.0.1", 8675))
    assert guard.origin_allowed({"origin": "http://127.0.0.1:8675"})
    assert guard.origin_allowed({})  # not a browser: nothing to forge
    for origin in (
        "http://127.0.0.1:8675.evil.com",
        "http://127.0.0.1:86750",
        "https://127.0.0.1:8675",
        "null",
    ):
        assert not guard.origin_allowed({"origin": origin}), origin


def test_a_non_loopback_bind_needs_a_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host)
        check_bind(host, None)
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.com"):
        assert not is_loopback(host)
        with pytest.raises(UsageError, match="token"):
            check_bind(host, None)
        check_bind(host, "t")


@pytest.mark.anyio
async def test_a_cross_origin_websocket_handshake_is_refused_with_403() -> None:
    async with memory_server() as served:
        await publish_job(served.services.bus, "j", 2)
        for origin in ("http://evil.example", f"{served.http}.evil.example"):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"{served.ws}/ws/progress/j", origin=origin):  # type: ignore[arg-type]
                    pass
            assert refused.value.response.status_code == 403
        same = await watch(f"{served.ws}/ws/progress/j", origin=served.http)
        assert same.seqs == [1, 2] and same.close_code == 1000


@pytest.mark.anyio
async def test_a_websocket_without_the_token_is_refused_with_401() -> None:
    async with memory_server(token="t0k") as served:
        await publish_job(served.services.bus, "j", 2)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{served.ws}/ws/progress/j"):
                pass
        assert refused.value.response.status_code == 401
        by_query = await watch(f"{served.ws}/ws/progress/j?token=t0k")
        by_header = await watch(
            f"{served.ws}/ws/progress/j", additional_headers={"Authorization": "Bearer t0k"}
        )
        assert by_query.seqs == by_header.seqs == [1, 2]
