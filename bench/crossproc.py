"""Cross-process latency: a publisher process (as `spruce run` does) -> `spruce serve` in another
process -> a WebSocket client in this one, on SQLite and on Redis, printed side by side.

Targets (SPEC §9): SQLite p50 <= 30 ms, p99 <= 100 ms; Redis p99 <= 20 ms.

    python bench/crossproc.py [--events 500] [--interval 0.01] [--redis redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).parent.parent


async def publish(url: str, job: str, events: int, interval: float) -> None:
    """The writer process: one job whose events carry their publish time in data.t."""
    from spruce.container import open_services
    from spruce.events import WorkflowEvent

    async with open_services(store_url=url) as services:
        bus = services.bus
        await bus.publish(WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, job_id=job, data={"t": 0})
        await bus.flush()
        await asyncio.sleep(1.0)  # let the client connect
        for i in range(events):
            kind = (
                WorkflowEvent.WORKFLOW_COMPLETED if i == events - 1 else WorkflowEvent.HOOK_STARTED
            )
            await bus.publish(kind, job_id=job, step_id="fast_hooks/x", data={"t": time.time()})
            await asyncio.sleep(interval)
        await bus.flush()


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL)


def reap(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def measure(store: str, events: int, interval: float) -> list[float]:
    from tests.conftest import free_port

    port = free_port()
    job = f"x{int(time.time() * 1000) % 10**9}"
    server = spawn([sys.executable, "-m", "spruce", "serve", "--port", str(port), "--store", store])
    writer: subprocess.Popen[bytes] | None = None
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    await http.get(f"http://127.0.0.1:{port}/healthz")
                    break
                await asyncio.sleep(0.05)
            writer = spawn([sys.executable, __file__, "--publish", store, job,
                            "--events", str(events), "--interval", str(interval)])  # fmt: skip
            while (await http.get(f"http://127.0.0.1:{port}/api/jobs/{job}")).status_code != 200:
                await asyncio.sleep(0.02)
        latencies: list[float] = []
        async with asyncio.timeout(120), connect(f"ws://127.0.0.1:{port}/ws/progress/{job}") as ws:
            async for raw in ws:
                now = time.time()
                sent = json.loads(raw)["data"]["t"]
                if sent:
                    latencies.append(now - sent)
        writer.wait(timeout=30)
        return latencies
    finally:
        for proc in (writer, server):
            if proc is not None:
                reap(proc)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


async def main_async(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = [("sqlite", f"sqlite://{Path(tmp) / 'events.db'}")]
        if args.redis:
            stores.append(("redis", args.redis))
        for name, url in stores:
            try:
                latencies = await measure(url, args.events, args.interval)
            except Exception as exc:  # e.g. no Redis server: report it, keep the other row
                rows.append((name, f"failed: {exc!r}"))
                continue
            p50, p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
            worst = max(latencies) * 1000
            rows.append((name, f"{len(latencies):>7}{p50:>9.1f}{p99:>9.1f}{worst:>9.1f}"))
    print(f"\nrun -> serve -> client, {args.events} events every {args.interval * 1000:.0f} ms")
    print(f"{'store':<8}{'events':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, text in rows:
        print(f"{name:<8}{text}")
    print("targets: sqlite p50 <= 30, p99 <= 100; redis p99 <= 20")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15", help="'' to skip Redis")
    parser.add_argument("--publish", nargs=2, metavar=("STORE", "JOB"))
    args = parser.parse_args()
    if args.publish:
        asyncio.run(publish(args.publish[0], args.publish[1], args.events, args.interval))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
