"""Fan-out: 1,000 WebSocket clients on one job, 2,000 events, against a bare Starlette broadcast.

Both servers run in their own process; this process holds the clients, checks that every client
got every event in order, and prints p50/p99 delivery latency and server memory per connection.

    python bench/fanout.py [--clients 1000] [--events 2000] [--rate 25]   (about 3 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

JOB = "fan"


# servers (run in a child process) ------------------------------------------------------------


async def _pace(count: int, rate: float, emit: Any) -> None:
    start = time.perf_counter()
    for i in range(count):
        await emit(i)
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def serve_spruce(port: int, events: int, rate: float) -> None:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from spruce.container import open_services
    from spruce.events import WorkflowEvent
    from spruce.server import listen
    from spruce.server.app import create_app
    from spruce.server.bridge import BridgeLimits

    async with open_services(store_url="memory://") as services:
        bus = services.bus
        await bus.publish(WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, job_id=JOB, data={"t": 0})
        await bus.flush()

        async def emit(i: int) -> None:
            kind = (
                WorkflowEvent.WORKFLOW_COMPLETED if i == events - 2 else WorkflowEvent.HOOK_STARTED
            )
            await bus.publish(kind, job_id=JOB, step_id="fast_hooks/x", data={"t": time.time()})

        async def start(request: Request) -> JSONResponse:
            asyncio.get_running_loop().create_task(_pace(events - 1, rate, emit))
            return JSONResponse({"started": True})

        app = create_app(
            services,
            None,
            roots=[],
            limits=BridgeLimits(max_clients=5000),
            mounts=[Route("/bench/start", start, methods=["POST"])],
        )
        await listen.Server(listen.config(app, host="127.0.0.1", port=port)).serve()


def serve_peer(port: int, events: int, rate: float) -> None:
    """The side-by-side peer: a bare Starlette broadcast (a set of sockets, send to each)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    clients: set[WebSocket] = set()

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        clients.add(ws)
        await ws.send_text(json.dumps({"seq": 1, "data": {"t": 0}}))
        try:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            clients.discard(ws)

    async def emit(i: int) -> None:
        text = json.dumps({"seq": i + 2, "data": {"t": time.time()}})
        for ws in list(clients):
            with contextlib.suppress(Exception):
                await ws.send_text(text)

    async def start(request: Request) -> JSONResponse:
        asyncio.get_running_loop().create_task(_pace(events - 1, rate, emit))
        return JSONResponse({"started": True})

    app = Starlette(
        routes=[
            WebSocketRoute("/ws/progress/fan", socket),
            Route("/bench/start", start, methods=["POST"]),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio",
                ws_per_message_deflate=False)  # fmt: skip


# the clients (this process) ------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    delivered: int
    in_order: bool
    closes: dict[int, int]
    latencies: array[float]
    rss_idle_kb: int
    rss_connected_kb: int
    rss_peak_kb: int
    seconds: float


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def client(url: str, expected: int, latencies: array[float], ready: asyncio.Event,
                 counter: list[int]) -> tuple[int, bool, int]:  # fmt: skip
    got, in_order, last = 0, True, 0
    async with connect(url, max_queue=None, ping_interval=None, open_timeout=60) as ws:
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        with contextlib.suppress(Exception):
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                seq = message["seq"]
                in_order = in_order and seq == last + 1
                last = seq
                got += 1
                sent = message["data"]["t"]
                if sent:
                    latencies.append(now - sent)
                if got == expected:
                    break
    return got, in_order, ws.close_code or 0


async def run_one(name: str, argv: list[str], port: int, clients: int, events: int) -> Outcome:
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    await http.get(f"{base}/healthz")
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            idle = rss_kb(proc.pid)
            latencies: array[float] = array("d")
            ready = asyncio.Event()
            counter = [0, clients]
            url = f"ws://127.0.0.1:{port}/ws/progress/{JOB}"
            tasks = []
            for _ in range(clients):  # connect in small waves: the listen backlog is finite
                tasks.append(asyncio.create_task(client(url, events, latencies, ready, counter)))
                if len(tasks) % 100 == 0:
                    await asyncio.sleep(0.05)
            await asyncio.wait_for(ready.wait(), 120)
            await asyncio.sleep(1.0)
            connected = rss_kb(proc.pid)
            started = time.perf_counter()
            await http.post(f"{base}/bench/start")
            results = await asyncio.gather(*tasks)
            seconds = time.perf_counter() - started
            peak = rss_kb(proc.pid, "VmHWM")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    closes: dict[int, int] = {}
    for _, _, code in results:
        closes[code] = closes.get(code, 0) + 1
    return Outcome(name, sum(r[0] for r in results), all(r[1] for r in results), closes,
                   latencies, idle, connected, peak, seconds)  # fmt: skip


def quantile(values: array[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(outcomes: list[Outcome], clients: int, events: int) -> None:
    print(f"\n{clients} clients x {events} events ({clients * events:,} deliveries expected)")
    print(f"{'server':<22}{'delivered':>12}{'in order':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'KB/conn':>9}{'peak MB':>9}{'secs':>7}  closes")  # fmt: skip
    for o in outcomes:
        per_conn = (o.rss_connected_kb - o.rss_idle_kb) / clients
        p50, p99 = quantile(o.latencies, 0.5) * 1000, quantile(o.latencies, 0.99) * 1000
        peak = o.rss_peak_kb / 1024
        print(f"{o.name:<22}{o.delivered:>12,}{o.in_order!s:>10}{p50:>9.1f}{p99:>9.1f}"
              f"{per_conn:>9.1f}{peak:>9.1f}{o.seconds:>7.1f}  {o.closes}")  # fmt: skip
    spruce, peer = outcomes
    ratio = quantile(spruce.latencies, 0.5) / max(quantile(peer.latencies, 0.5), 1e-9)
    print(f"p50 ratio spruce/peer: {ratio:.2f}; target <= 30 KB per connection")
    throughput = [o.delivered / o.seconds for o in outcomes]
    print(f"deliveries/s: spruce {throughput[0]:,.0f}, peer {throughput[1]:,.0f}")


async def main_async(args: argparse.Namespace) -> None:
    from tests.conftest import free_port

    outcomes = []
    for name, mode in (
        ("spruce (bridge)", "--serve-spruce"),
        ("starlette broadcast", "--serve-peer"),
    ):
        port = free_port()
        argv = [sys.executable, __file__, mode, str(port), "--events", str(args.events),
                "--rate", str(args.rate)]  # fmt: skip
        outcomes.append(await run_one(name, argv, port, args.clients, args.events))
    report(outcomes, args.clients, args.events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=25.0, help="events per second")
    parser.add_argument("--serve-spruce", type=int, metavar="PORT")
    parser.add_argument("--serve-peer", type=int, metavar="PORT")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.serve_spruce:
        asyncio.run(serve_spruce(args.serve_spruce, args.events, args.rate))
    elif args.serve_peer:
        serve_peer(args.serve_peer, args.events, args.rate)
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    main()
