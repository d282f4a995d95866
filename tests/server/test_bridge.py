"""EventBusWebSocketBridge through a real uvicorn and a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from websockets.asyncio.client import connect

from spruce.bus import WorkflowEventBus
from spruce.container import Services, open_services
from spruce.events import WorkflowEvent
from spruce.server.bridge import BridgeLimits, CloseCode
from spruce.store.base import Retention
from tests.server.conftest import Served, memory_server, read_all, serve_in_process, watch

pytestmark = pytest.mark.anyio


async def publish_job(
    bus: WorkflowEventBus, job_id: str, count: int, *, end: bool = True, payload: int = 0
) -> None:
    """`count` events of a job (the last one its end event when `end`)."""
    await bus.publish(
        WorkflowEvent.WORKFLOW_SESSION_INITIALIZING,
        job_id=job_id,
        data={"workflow": "standard_quality", "project": "/p"},
    )
    for i in range(2, count + (0 if end else 1)):
        data: dict[str, Any] = {"hook": "h", "phase": "fast_hooks", "i": i}
        if payload:
            data["blob"] = "x" * payload
        await bus.publish(
            WorkflowEvent.HOOK_STARTED, job_id=job_id, step_id="fast_hooks/h", data=data
        )
    if end:
        await bus.publish(
            WorkflowEvent.WORKFLOW_COMPLETED, job_id=job_id, data={"status": "passed"}
        )
    await bus.flush()


async def wait_for_clients(served: Served, count: int) -> None:
    async with asyncio.timeout(10):
        while served.app.state.bridge.stats().job_clients != count:
            await asyncio.sleep(0.01)


async def test_client_gets_replay_then_live_events_in_order_and_close_1000() -> None:
    async with memory_server() as served:
        bus = served.services.bus
        await publish_job(bus, "j1", 10, end=False)
        async with connect(f"{served.ws}/ws/progress/j1") as ws:
            first = [json.loads(await ws.recv()) for _ in range(10)]
            await bus.publish(WorkflowEvent.HOOK_STARTED, job_id="j1", step_id="fast_hooks/h")
            await bus.publish(WorkflowEvent.WORKFLOW_FAILED, job_id="j1", data={"status": "failed"})
            rest = await read_all(ws)
        assert [m["seq"] for m in first] == list(range(1, 11))
        assert rest.seqs == [11, 12]
        assert rest.messages[-1]["event"] == "workflow_failed"
        assert rest.close_code == CloseCode.DONE


async def test_after_a_job_ended_a_client_gets_the_full_replay() -> None:
    async with memory_server() as served:
        await publish_job(served.services.bus, "done", 2500)
        reading = await watch(f"{served.ws}/ws/progress/done")
        assert reading.seqs == list(range(1, 2501))
        assert reading.close_code == CloseCode.DONE


async def test_reconnecting_with_after_gets_exactly_the_later_events() -> None:
    async with memory_server() as served:
        bus = served.services.bus
        await publish_job(bus, "j", 30, end=False)
        # max_queue=None: the client library would otherwise stop reading and answer our
        # close late, having 18 frames unread.
        async with connect(f"{served.ws}/ws/progress/j", max_queue=None) as ws:
            seen = (await read_all(ws, limit=12)).seqs
        await publish_job_tail(bus, "j", 10)
        reading = await watch(f"{served.ws}/ws/progress/j?after={seen[-1]}")
        assert seen == list(range(1, 13))
        assert reading.seqs == list(range(13, 41))
        assert reading.close_code == CloseCode.DONE
        # a cursor at the end event: nothing to send, closed at once
        assert (await watch(f"{served.ws}/ws/progress/j?after=40")).close_code == CloseCode.DONE


async def publish_job_tail(bus: WorkflowEventBus, job_id: str, count: int) -> None:
    for _ in range(count - 1):
        await bus.publish(WorkflowEvent.HOOK_STARTED, job_id=job_id, step_id="fast_hooks/h")
    await bus.publish(WorkflowEvent.WORKFLOW_COMPLETED, job_id=job_id, data={"status": "passed"})
    await bus.flush()


async def test_each_client_sees_only_its_own_job() -> None:
    async with memory_server() as served:
        bus = served.services.bus
        await publish_job(bus, "a", 3, end=False)
        await publish_job(bus, "b", 3, end=False)
        async with (
            connect(f"{served.ws}/ws/progress/a") as wa,
            connect(f"{served.ws}/ws/progress/b") as wb,
        ):
            await wait_for_clients(served, 2)
            await publish_job_tail(bus, "b", 5)
            await publish_job_tail(bus, "a", 4)
            ra, rb = await read_all(wa), await read_all(wb)
        assert {m["job_id"] for m in ra.messages} == {"a"}
        assert {m["job_id"] for m in rb.messages} == {"b"}
        assert ra.seqs == list(range(1, 8)) and rb.seqs == list(range(1, 9))


async def test_unknown_job_closes_4404_and_malformed_requests_close_4400() -> None:
    async with memory_server() as served:
        assert (await watch(f"{served.ws}/ws/progress/nope")).close_code == 4404
        for bad in (
            "bad%20id",
            "x" * 65,
            "j?after=-1",
            "j?after=abc",
            "j?after=99999999999999999999",
        ):
            reading = await watch(f"{served.ws}/ws/progress/{bad}")
            assert reading.close_code == 4400, bad
        assert (await watch(f"{served.ws}/ws/progress?after=%22%3E")).close_code == 4400
        assert served.app.state.bridge.stats().job_clients == 0


async def test_a_client_that_never_reads_is_closed_4008_while_another_gets_everything() -> None:
    limits = BridgeLimits(queue_size=64, close_timeout=60)
    async with (
        open_services(store_url="memory://") as services,
        serve_in_process(services, limits=limits) as served,
    ):
        bus = served.services.bus
        await publish_job(bus, "big", 2, end=False)
        url = f"{served.ws}/ws/progress/big"
        # 400 frames of 64 KB overflow every socket buffer between the server and a client that
        # does not read (max_queue=1: the client library stops reading from the socket too).
        stalled_conn = connect(url, max_queue=1, ping_interval=None)
        async with stalled_conn as stalled, connect(url) as fast:
            await wait_for_clients(served, 2)
            reader = asyncio.create_task(read_all(fast))
            for _ in range(400):
                await publish_job_tail_step(bus, "big", payload=64_000)
            await publish_job_tail(bus, "big", 1)
            fast_reading = await asyncio.wait_for(reader, 30)
            stats = served.app.state.bridge.stats()
            stalled_reading = await asyncio.wait_for(read_all(stalled), 30)
        assert fast_reading.seqs == list(range(1, 404))
        assert fast_reading.close_code == CloseCode.DONE
        assert stats.slow_consumer_closes == 1
        assert stats.queued <= limits.queue_size  # nothing piles up for the stalled client
        assert stalled_reading.close_code == CloseCode.SLOW_CONSUMER
        assert stalled_reading.close_reason == "slow consumer"
        # what it did get is an in-order prefix: it resumes with after=<last seq>
        assert stalled_reading.seqs == list(range(1, len(stalled_reading.seqs) + 1))
        assert len(stalled_reading.seqs) < 403


async def publish_job_tail_step(bus: WorkflowEventBus, job_id: str, *, payload: int) -> None:
    await bus.publish(
        WorkflowEvent.HOOK_STARTED,
        job_id=job_id,
        step_id="fast_hooks/h",
        data={"blob": "x" * payload},
    )
    await bus.flush()


async def test_connection_limit_closes_1013_and_frees_on_disconnect() -> None:
    async with memory_server(limits=BridgeLimits(max_clients=2)) as served:
        await publish_job(served.services.bus, "j", 2, end=False)
        url = f"{served.ws}/ws/progress/j"
        async with connect(url) as one, connect(url) as two:
            await wait_for_clients(served, 2)
            assert (await watch(url)).close_code == 1013
            await one.close()
            await two.close()
        await wait_for_clients(served, 0)
        async with connect(url) as again:
            assert json.loads(await again.recv())["seq"] == 1
        stats = served.app.state.bridge.stats()
        assert stats.rejected_full == 1


async def test_registrations_are_removed_when_sockets_go_away_mid_job() -> None:
    async with memory_server() as served:
        await publish_job(served.services.bus, "j", 3, end=False)
        for _ in range(20):
            async with connect(f"{served.ws}/ws/progress/j") as ws:
                await ws.recv()
        await wait_for_clients(served, 0)
        assert served.app.state.bridge._jobs == {}


async def test_a_gap_in_live_delivery_is_filled_from_the_log() -> None:
    """Events the bus never handed over (another process, a lag) are read from the log."""
    async with (
        open_services(store_url="memory://") as services,
        serve_in_process(services) as served,
    ):
        writer = WorkflowEventBus(services.log)  # a second publisher on the same log
        await writer.start()
        try:
            await publish_job(writer, "g", 3, end=False)
            async with connect(f"{served.ws}/ws/progress/g") as ws:
                head = (await read_all(ws, limit=3)).seqs
                await publish_job_tail(writer, "g", 5)  # seqs 4..8 reach the log only
                services.bus.ingest(await services.log.read("g", after=7))  # the bus sees only 8
                rest = await read_all(ws)
        finally:
            await writer.aclose()
        assert head + rest.seqs == list(range(1, 9))
        assert rest.close_code == CloseCode.DONE


async def test_events_that_never_reach_the_bus_arrive_through_the_periodic_resync() -> None:
    """Idle live clients are caught up from the log, end event and close 1000 included."""
    async with (
        open_services(store_url="memory://") as services,
        serve_in_process(services, limits=BridgeLimits(resync_after=0.2)) as served,
    ):
        writer = WorkflowEventBus(services.log)  # the server's bus never sees these events
        await writer.start()
        try:
            await publish_job(writer, "quiet", 3, end=False)
            url = f"{served.ws}/ws/progress/quiet"
            async with connect(url) as one, connect(url) as two:
                head = [(await read_all(ws, limit=3)).seqs for ws in (one, two)]
                await wait_for_clients(served, 2)
                await publish_job_tail(writer, "quiet", 4)
                rest = [await asyncio.wait_for(read_all(ws), 10) for ws in (one, two)]
        finally:
            await writer.aclose()
        assert head == [[1, 2, 3], [1, 2, 3]]
        assert [r.seqs for r in rest] == [[4, 5, 6, 7], [4, 5, 6, 7]]
        assert [r.close_code for r in rest] == [CloseCode.DONE, CloseCode.DONE]


def server_tasks() -> Counter[str]:
    """The running tasks of this process by coroutine, e.g. `EventBusWebSocketBridge._follow`."""
    return Counter(task.get_coro().__qualname__ for task in asyncio.all_tasks())  # type: ignore[union-attr]


async def test_an_idle_client_costs_its_socket_task_only_and_senders_end_with_the_backlog() -> None:
    async with memory_server() as served:
        bus = served.services.bus
        await publish_job(bus, "idle", 2, end=False)
        url = f"{served.ws}/ws/progress/idle"
        sockets = [await connect(url) for _ in range(20)]
        try:
            await wait_for_clients(served, 20)
            for ws in sockets:
                assert (await read_all(ws, limit=2)).seqs == [1, 2]
            idle = server_tasks()
            await bus.publish(WorkflowEvent.HOOK_STARTED, job_id="idle", step_id="fast_hooks/h")
            for ws in sockets:
                assert json.loads(await ws.recv())["seq"] == 3
            await asyncio.sleep(0.05)
            after = server_tasks()
        finally:
            for ws in sockets:
                await ws.close()
        await wait_for_clients(served, 0)
        bridge = {name: n for name, n in idle.items() if "WebSocketBridge" in name}
        assert bridge == {
            "EventBusWebSocketBridge._follow": 1,
            "EventBusWebSocketBridge._resync": 1,
        }
        assert idle["WSProtocol.run_asgi"] == 20
        assert after["EventBusWebSocketBridge._send_live"] == 0


async def test_a_cursor_removed_by_retention_closes_4410_naming_the_earliest() -> None:
    async with memory_server() as served:
        await publish_job(served.services.bus, "r", 50)
        await served.services.log.gc(
            Retention(keep_days=None, keep_jobs=None, max_events_per_job=10)
        )
        reading = await watch(f"{served.ws}/ws/progress/r?after=5")
        assert reading.close_code == 4410
        assert "earliest 41" in reading.close_reason
        assert (await watch(f"{served.ws}/ws/progress/r?after=40")).seqs == list(range(41, 51))


async def test_firehose_sends_every_job_with_cursors_and_resumes_after_a_cursor() -> None:
    async with memory_server() as served:
        bus = served.services.bus
        await publish_job(bus, "f1", 3)
        async with connect(f"{served.ws}/ws/progress") as ws:
            replay = (await read_all(ws, limit=3)).messages
            await publish_job(bus, "f2", 4)
            live = (await read_all(ws, limit=4)).messages
        assert [(m["job_id"], m["seq"]) for m in replay + live] == [
            ("f1", 1), ("f1", 2), ("f1", 3), ("f2", 1), ("f2", 2), ("f2", 3), ("f2", 4),
        ]  # fmt: skip
        cursor = live[1]["cursor"]
        async with connect(f"{served.ws}/ws/progress?after={cursor}") as ws:
            resumed = (await read_all(ws, limit=2)).messages
        assert [(m["job_id"], m["seq"]) for m in resumed] == [("f2", 3), ("f2", 4)]


async def test_server_shutdown_closes_clients_so_they_can_resume() -> None:
    async with open_services(store_url="memory://") as services:
        async with serve_in_process(services) as served:
            await publish_job(services.bus, "s", 2, end=False)
            ws = await connect(f"{served.ws}/ws/progress/s")
            await ws.recv()
            reader = asyncio.create_task(read_all(ws))
        reading = await asyncio.wait_for(reader, 10)
        assert reading.close_code in (1001, 1012)


def _services(served: Served) -> Services:
    return served.services
