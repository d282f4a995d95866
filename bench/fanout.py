"""Fan-out: 1,000 WebSocket clients on one job, 2,000 events, against a bare Starlette broadcast;
and 1,000 idle firehose clients that never read, on a log with a backlog.

Both servers run in a child process of their own under the same uvicorn settings (spruce's
`listen.config`, the stdlib event loop of `spruce serve`); this process holds the clients, checks
that every client got every event in order, and prints p50/p99 delivery latency (stamped at
publish time on both) and server memory per connection (RSS after gc, at steady state once every
client joined), per round and as medians over rounds with ratios spruce/peer.

spruce serves from a SQLite log (the default store; `--store memory` for the in-process one, as
the bench measured before the idle clients came) holding a backlog of `--backlog` events of
another job (~430 bytes each). Once the following clients joined, `--idle` more clients open
`/ws/progress?after=0` (the dashboard's firehose, so the whole backlog is replayed to each) and
never read a byte; they stay connected while the events go out. Server memory per idle client
is the RSS they add (target <= 50 KB, goal 20 KB); the bare broadcast has no firehose.

    python bench/fanout.py [--clients 1000] [--events 2000] [--rate 25] [--rounds 2]
                           [--idle 1000] [--backlog 1000]
    python bench/fanout.py --trace     (where the memory goes: tracemalloc and gc object diffs)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
from crossproc import reap  # bench/ is on sys.path when a bench runs as a script
from websockets.asyncio.client import connect

JOB = "fan"
SERVERS = ("spruce", "peer")


# servers (run in a child process) ------------------------------------------------------------


async def _pace(count: int, rate: float, emit: Callable[[int], Awaitable[None]]) -> None:
    start = time.perf_counter()
    for i in range(count):
        await emit(i)
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


def _rss_kb(pid: int | str = "self", field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Probe:
    """The bench's routes in each server: start the events, and read memory after a full gc."""

    def __init__(self, events: int, rate: float, emit: Callable[[int], Awaitable[None]]) -> None:
        self.events, self.rate, self.emit = events, rate, emit
        self.marks: dict[str, tuple[tracemalloc.Snapshot, Counter[str], Counter[str]]] = {}

    def routes(self) -> list[Any]:
        from starlette.routing import Route

        return [
            Route("/bench/start", self.start, methods=["POST"]),
            Route("/bench/mem", self.mem),
        ]

    async def start(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        asyncio.get_running_loop().create_task(_pace(self.events - 1, self.rate, self.emit))
        return JSONResponse({"started": True})

    async def mem(self, request: Any) -> Any:
        """RSS after gc; with tracing on, `?mark=NAME` records a snapshot and `?diff=A,B` diffs."""
        from starlette.responses import JSONResponse

        gc.collect()
        body: dict[str, Any] = {"rss_kb": _rss_kb()}
        if tracemalloc.is_tracing() and (mark := request.query_params.get("mark")):
            counts: Counter[str] = Counter()
            sizes: Counter[str] = Counter()
            for obj in gc.get_objects():
                name = type(obj).__qualname__
                counts[name] += 1
                sizes[name] += sys.getsizeof(obj)
            self.marks[mark] = (tracemalloc.take_snapshot(), counts, sizes)
        if self.marks and (diff := request.query_params.get("diff")):
            body.update(self._diff(*diff.split(",")))
        return JSONResponse(body)

    def _diff(self, before: str, after: str) -> dict[str, Any]:
        snap0, counts0, sizes0 = self.marks[before]
        snap1, counts1, sizes1 = self.marks[after]
        types = sorted(counts1, key=lambda n: sizes0[n] - sizes1[n])[:25]
        out: dict[str, Any] = {
            "types": [(n, counts1[n] - counts0[n], sizes1[n] - sizes0[n]) for n in types]
        }
        keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
        snap0, snap1 = snap0.filter_traces(keep), snap1.filter_traces(keep)
        stats = snap1.compare_to(snap0, "lineno")
        out["traced_kb"] = sum(s.size_diff for s in stats) / 1024
        out["lines"] = [(str(s.traceback[0]), s.size_diff, s.count_diff) for s in stats[:30]]
        files = snap1.compare_to(snap0, "filename")
        out["files"] = [(str(s.traceback[0]), s.size_diff) for s in files[:15]]
        return out


async def serve_spruce(port: int, events: int, rate: float, backlog: int, store: str) -> None:
    from spruce.container import open_services
    from spruce.events import WorkflowEvent
    from spruce.server import listen
    from spruce.server.app import create_app
    from spruce.server.bridge import BridgeLimits

    with tempfile.TemporaryDirectory(prefix="spruce-fanout-") as tmp:
        url = f"sqlite://{tmp}/events.db" if store == "sqlite" else "memory://"
        async with open_services(store_url=url) as services:
            bus = services.bus
            for i in range(backlog):  # a finished job: what a firehose replay from 0 sends
                last = i == backlog - 1
                kind = WorkflowEvent.WORKFLOW_COMPLETED if last else WorkflowEvent.HOOK_STARTED
                await bus.publish(kind, job_id="backlog", data={"pad": "p" * 300})
            await bus.publish(
                WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, job_id=JOB, data={"t": 0}
            )
            await bus.flush()

            async def emit(i: int) -> None:
                last = i == events - 2
                kind = WorkflowEvent.WORKFLOW_COMPLETED if last else WorkflowEvent.HOOK_STARTED
                await bus.publish(kind, job_id=JOB, step_id="fast_hooks/x", data={"t": time.time()})

            probe = Probe(events, rate, emit)
            limits = BridgeLimits(max_clients=5000)
            app = create_app(services, None, roots=[], limits=limits, mounts=probe.routes())
            await listen.Server(listen.config(app, host="127.0.0.1", port=port)).serve()


async def serve_peer(port: int, events: int, rate: float) -> None:
    """The side-by-side peer: a bare Starlette broadcast (a set of sockets, send to each)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    from spruce.server import listen

    clients: set[WebSocket] = set()

    def wire(seq: int, kind: str, t: float) -> str:
        # The same JSON as spruce's events: clients parse as many bytes from either server.
        return json.dumps(
            {"event": kind, "job_id": JOB, "seq": seq, "step_id": "fast_hooks/x",
             "timestamp": t or time.time(), "data": {"t": t}},
            separators=(",", ":"),
        )  # fmt: skip

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        clients.add(ws)
        await ws.send_text(wire(1, "workflow_session_initializing", 0))
        try:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            clients.discard(ws)

    async def emit(i: int) -> None:
        kind = "workflow_completed" if i == events - 2 else "hook_started"
        text = wire(i + 2, kind, time.time())
        for ws in list(clients):
            with contextlib.suppress(Exception):
                await ws.send_text(text)

    async def healthz(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    probe = Probe(events, rate, emit)
    routes = [WebSocketRoute(f"/ws/progress/{JOB}", socket), Route("/healthz", healthz)]
    app = Starlette(routes=[*routes, *probe.routes()])
    await listen.Server(listen.config(app, host="127.0.0.1", port=port)).serve()


def serve(args: argparse.Namespace) -> None:
    if args.trace:
        tracemalloc.start(1)
    kind, port = args.serve[0], int(args.serve[1])
    if kind == "spruce":
        asyncio.run(serve_spruce(port, args.events, args.rate, args.backlog, args.store))
    else:
        asyncio.run(serve_peer(port, args.events, args.rate))


# the clients (this process) ------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    delivered: int
    in_order: bool
    closes: dict[int, int]
    latencies: array[float]
    kb_per_conn: float
    peak_mb: float
    seconds: float
    cpu: float  # the server's CPU seconds while the events went out
    breakdown: dict[str, Any]
    kb_per_idle: float  # RSS each idle firehose client added (nan: none)

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


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


async def idle_client(port: int) -> asyncio.StreamWriter:
    """A firehose client from cursor 0 that, once accepted, never reads another byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws/progress?after=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"idle client refused: {head[:80]!r}")
    cast(
        asyncio.Transport, writer.transport
    ).pause_reading()  # from here on the kernel's buffers fill, then the server's
    return writer


async def settle(pid: int, *, limit: float = 120.0) -> None:
    """Wait until the server is quiet: less than 2 % of a core over half a second."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = _cpu_seconds(pid)
        await asyncio.sleep(0.5)
        if _cpu_seconds(pid) - before < 0.01:
            return


async def join_idle(port: int, count: int) -> list[asyncio.StreamWriter]:
    writers: list[asyncio.StreamWriter] = []
    for start in range(0, count, 100):  # in waves: the listen backlog is finite
        wave = min(100, count - start)
        writers += await asyncio.gather(*(idle_client(port) for _ in range(wave)))
    return writers


async def run_one(name: str, args: argparse.Namespace) -> Outcome:
    from tests.conftest import free_port

    port = free_port()
    argv = [sys.executable, __file__, "--serve", name, str(port), "--events", str(args.events),
            "--rate", str(args.rate), "--backlog", str(args.backlog), "--store", args.store,
            *(["--trace"] if args.trace else [])]  # fmt: skip
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=120) as http:
            for _ in range(400):
                with contextlib.suppress(httpx.HTTPError):
                    await http.get(f"{base}/healthz")
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            idle = (await http.get(f"{base}/bench/mem?mark=idle")).json()["rss_kb"]
            latencies: array[float] = array("d")
            ready = asyncio.Event()
            counter = [0, args.clients]
            url = f"ws://127.0.0.1:{port}/ws/progress/{JOB}"
            tasks = []
            for _ in range(args.clients):  # connect in small waves: the listen backlog is finite
                tasks.append(asyncio.create_task(client(url, args.events, latencies, ready,
                                                        counter)))  # fmt: skip
                if len(tasks) % 100 == 0:
                    await asyncio.sleep(0.05)
            await asyncio.wait_for(ready.wait(), 120)
            await asyncio.sleep(1.0)  # steady state: every session reached its live wait
            mem = (await http.get(f"{base}/bench/mem?mark=joined&diff=idle,joined")).json()
            idle_kb = float("nan")
            idlers: list[asyncio.StreamWriter] = []
            if name == "spruce" and args.idle:
                idlers = await join_idle(port, args.idle)
                await settle(proc.pid)  # every replay went as far as its socket lets it
                marks = "?mark=idlers&diff=joined,idlers" if args.trace else ""
                with_idle = (await http.get(f"{base}/bench/mem{marks}")).json()
                idle_kb = (with_idle["rss_kb"] - mem["rss_kb"]) / args.idle
                if args.trace:
                    print_breakdown(f"{name}, idle firehose", with_idle, args.idle)
            cpu = _cpu_seconds(proc.pid)
            started = time.perf_counter()
            await http.post(f"{base}/bench/start")
            results = await asyncio.gather(*tasks)
            seconds = time.perf_counter() - started
            peak = _rss_kb(proc.pid, "VmHWM")
            cpu = _cpu_seconds(proc.pid) - cpu
            for writer in idlers:
                writer.close()
    finally:
        reap(proc)
    closes: dict[int, int] = {}
    for _, _, code in results:
        closes[code] = closes.get(code, 0) + 1
    return Outcome(name, sum(r[0] for r in results), all(r[1] for r in results), closes,
                   latencies, (mem["rss_kb"] - idle) / args.clients, peak / 1024, seconds,
                   cpu, mem, idle_kb)  # fmt: skip


def print_breakdown(name: str, b: dict[str, Any], clients: int) -> None:
    print(f"\n== {name}: per connection, {clients} joined ==")
    print(f"traced {b.get('traced_kb', 0) / clients:.2f} KB per connection")
    for where, size, count in b.get("lines", []):
        print(f"  {size / clients:>8.0f} B {count / clients:>6.1f} blocks  {where}")
    print("  by file:")
    for where, size in b.get("files", []):
        print(f"  {size / clients:>8.0f} B  {where}")
    print("  gc-tracked objects (count, getsizeof) per connection:")
    for name, count, size in b.get("types", []):
        if count:
            print(f"  {count / clients:>6.2f} x {name:<34}{size / clients:>8.0f} B")


def report(rounds: list[dict[str, Outcome]], args: argparse.Namespace) -> None:
    print(f"\n{args.clients} clients x {args.events} events at {args.rate:g}/s "
          f"({args.clients * args.events:,} deliveries expected per server)")  # fmt: skip
    print(f"{'round':<6}{'server':<8}{'delivered':>12}{'in order':>10}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'KB/conn':>9}{'KB/idle':>9}{'peak MB':>9}{'secs':>7}{'cpu s':>7}"
          "  closes")  # fmt: skip
    for i, outcomes in enumerate(rounds, 1):
        for o in outcomes.values():
            print(f"{i:<6}{o.name:<8}{o.delivered:>12,}{o.in_order!s:>10}{o.p(0.5):>9.1f}"
                  f"{o.p(0.99):>9.1f}{o.kb_per_conn:>9.1f}{o.kb_per_idle:>9.1f}{o.peak_mb:>9.1f}"
                  f"{o.seconds:>7.1f}{o.cpu:>7.1f}  {o.closes}")  # fmt: skip
    med: dict[str, dict[str, float]] = {}
    for name in SERVERS:
        runs = [r[name] for r in rounds]
        med[name] = {
            "p50": statistics.median(o.p(0.5) for o in runs),
            "p99": statistics.median(o.p(0.99) for o in runs),
            "kb": statistics.median(o.kb_per_conn for o in runs),
            "cpu": statistics.median(o.cpu for o in runs),
        }
        m = med[name]
        print(f"median {name:<8} p50 {m['p50']:.1f} ms  p99 {m['p99']:.1f} ms  "
              f"{m['kb']:.1f} KB/conn  server CPU {m['cpu']:.1f} s")  # fmt: skip
    s, p = med["spruce"], med["peer"]
    print(f"ratio spruce/peer: p50 {s['p50'] / p['p50']:.2f}  p99 {s['p99'] / p['p99']:.2f}  "
          f"KB/conn {s['kb'] / p['kb']:.2f}  CPU {s['cpu'] / p['cpu']:.2f}; "
          "target <= 30 KB per connection")  # fmt: skip
    ok = all(o.in_order and o.delivered == args.clients * args.events
             for r in rounds for o in r.values())  # fmt: skip
    if args.idle:
        idle_kb = statistics.median(r["spruce"].kb_per_idle for r in rounds)
        print(f"median spruce memory per idle firehose client ({args.idle} clients, "
              f"{args.backlog} events of backlog): {idle_kb:.1f} KB; "
              "target <= 50 KB, goal 20 KB")  # fmt: skip
    print("every event delivered in order to every client:", ok)


async def main_async(args: argparse.Namespace) -> None:
    rounds: list[dict[str, Outcome]] = []
    for i in range(args.rounds):
        order = SERVERS if i % 2 == 0 else SERVERS[::-1]  # alternate: drift hits both alike
        outcomes = {name: await run_one(name, args) for name in order}
        rounds.append({name: outcomes[name] for name in SERVERS})
        if args.trace:
            for name in SERVERS:
                print_breakdown(name, outcomes[name].breakdown, args.clients)
    report(rounds, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=25.0, help="events per second")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=int, default=1000, help="idle firehose clients (spruce)")
    parser.add_argument("--backlog", type=int, default=1000, help="events in spruce's log first")
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="tracemalloc in the servers and a memory breakdown (slower)",
    )
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.serve:
        serve(args)
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    main()
