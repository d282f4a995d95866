"""Publish throughput of WorkflowEventBus with 5 subscribers, side by side with blinker and pyee.

spruce is measured end to end: every event stored in the SQLite log (group commit) and handed
to all 5 subscribers.  blinker and pyee do the same 5-way fan-out in memory, with no log.
Usage: python bench/bus.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from spruce.bus import WorkflowEventBus
from spruce.events import Event, WorkflowEvent
from spruce.store import open_store

SUBSCRIBERS = 5


def spruce_rate(events: int, url: str) -> float:
    async def run() -> float:
        log = open_store(url)
        await log.open()
        counts = [0] * SUBSCRIBERS
        try:
            async with WorkflowEventBus(log) as bus:
                for n in range(SUBSCRIBERS):
                    bus.subscribe(None, _counter(counts, n))
                start = time.perf_counter()
                for i in range(events):
                    await bus.publish(
                        WorkflowEvent.HOOK_COMPLETED,
                        job_id="bench",
                        step_id="fast_hooks/x",
                        data={"hook": "x", "i": i},
                    )
                await bus.flush(timeout=120)
                while min(counts) < events:
                    await asyncio.sleep(0.001)
                elapsed = time.perf_counter() - start
        finally:
            await log.aclose()
        return events / elapsed

    return asyncio.run(run())


def _counter(counts: list[int], n: int) -> Callable[[Event], None]:
    def handler(event: Event) -> None:
        counts[n] += 1

    return handler


def blinker_rate(events: int) -> float:
    import blinker

    signal = blinker.Signal()
    counts = [0] * SUBSCRIBERS
    handlers = [_blinker_counter(counts, n) for n in range(SUBSCRIBERS)]
    for handler in handlers:
        signal.connect(handler)
    start = time.perf_counter()
    for i in range(events):
        signal.send("bench", event="hook_completed", data={"hook": "x", "i": i})
    elapsed = time.perf_counter() - start
    assert min(counts) == events
    return events / elapsed


def _blinker_counter(counts: list[int], n: int) -> Callable[..., None]:
    def handler(sender: object, **kwargs: object) -> None:
        counts[n] += 1

    return handler


def pyee_rate(events: int) -> float:
    from pyee import EventEmitter

    emitter = EventEmitter()
    counts = [0] * SUBSCRIBERS
    for n in range(SUBSCRIBERS):
        emitter.on("hook_completed", _pyee_counter(counts, n))
    start = time.perf_counter()
    for i in range(events):
        emitter.emit("hook_completed", {"hook": "x", "i": i})
    elapsed = time.perf_counter() - start
    assert min(counts) == events
    return events / elapsed


def _pyee_counter(counts: list[int], n: int) -> Callable[[object], None]:
    def handler(payload: object) -> None:
        counts[n] += 1

    return handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {
        "spruce+sqlite": [],
        "spruce+memory": [],
        "blinker": [],
        "pyee": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            db = Path(tmp) / f"bench{round_no}.db"
            results["spruce+sqlite"].append(spruce_rate(args.events, f"sqlite://{db}"))
            results["spruce+memory"].append(spruce_rate(args.events, "memory://"))
            results["blinker"].append(blinker_rate(args.events))
            results["pyee"].append(pyee_rate(args.events))
    medians = {name: statistics.median(rates) for name, rates in results.items()}
    print(f"{args.events} events x {SUBSCRIBERS} subscribers, median of {args.rounds} rounds")
    for name, rate in medians.items():
        per_event_us = 1e6 / rate
        print(f"  {name:<14} {rate:>12,.0f} events/s  ({per_event_us:6.2f} us/event)")
    sqlite = medians["spruce+sqlite"]
    print(f"  ratio spruce+sqlite / blinker: {sqlite / medians['blinker']:.2f}")
    print(f"  ratio spruce+sqlite / pyee:    {sqlite / medians['pyee']:.2f}")
    target = 100_000
    print(
        f"  target >= {target:,} events/s with SQLite:",
        "met" if sqlite >= target else "NOT met",
    )


if __name__ == "__main__":
    main()
