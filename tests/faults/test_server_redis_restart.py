"""A private redis-server restarted under a running `spruce serve` app: reconnecting WebSockets
are served (no 1011, no traceback), and a follower of a job that a Redis without persistence
lost is closed 4404 instead of waiting in silence."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from spruce.container import open_services
from spruce.events import WorkflowEvent
from spruce.server.bridge import BridgeLimits, CloseCode
from tests.server.conftest import read_all, serve_in_process, watch
from tests.server.test_bridge import publish_job
from tests.store.redis_support import RedisServer, private_redis

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis(tmp_path) as server:
        yield server


def wipe(server: RedisServer) -> None:
    """What a Redis without persistence keeps across a restart: nothing."""
    for entry in server.directory.iterdir():
        if entry.name != "redis.log":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


async def test_websockets_reconnecting_after_a_redis_restart_are_served(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        open_services(store_url=redis_server.url) as services,
        serve_in_process(services) as served,
    ):
        await publish_job(services.bus, "j1", 6)
        url = f"{served.ws}/ws/progress/j1"
        first = await asyncio.gather(*(watch(url) for _ in range(4)))  # the pool holds them now
        assert all(r.close_code == CloseCode.DONE and r.seqs == list(range(1, 7)) for r in first)
        redis_server.stop()
        redis_server.start()
        with caplog.at_level(logging.WARNING, logger="spruce.server"):
            again = await asyncio.gather(*(watch(url) for _ in range(4)))
        assert [r.close_code for r in again] == [CloseCode.DONE] * 4
        assert all(r.seqs == list(range(1, 7)) for r in again)
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_a_follower_of_a_job_that_redis_lost_is_closed_4404(
    redis_server: RedisServer,
) -> None:
    limits = BridgeLimits(resync_after=0.5)
    async with (
        open_services(store_url=redis_server.url) as services,
        serve_in_process(services, limits=limits) as served,
    ):
        bus = services.bus
        await bus.publish(WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, job_id="gone", data={})
        await bus.publish(WorkflowEvent.HOOK_STARTED, job_id="gone", data={"hook": "h"})
        await bus.flush()
        async with connect(f"{served.ws}/ws/progress/gone") as ws:
            seen = await read_all(ws, limit=2)
            assert seen.seqs == [1, 2]
            redis_server.stop()
            wipe(redis_server)
            redis_server.start()
            async with asyncio.timeout(30):  # a bound for the test, not a timing assertion
                rest = await read_all(ws)
        assert rest.close_code == CloseCode.UNKNOWN_JOB and not rest.messages
        assert "no longer in the event log" in rest.close_reason
