"""Time `spruce stats` over 1,000 finished jobs in a SQLite log (target: ≤ 200 ms, median).

Each synthetic job has the default workflow's shape: config, fast hooks (10), comprehensive
hooks (3), the tests phase with `--tests` test cases, and its end event. The log is written once;
then `collect_stats` runs `--rounds` times on a fresh connection, reading every job's events,
and again with the per-job summary cache filled (what a repeated `spruce stats` does); medians.
Usage: python bench/stats.py [--jobs 1000] [--tests 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from spruce.events import Event
from spruce.events import WorkflowEvent as E
from spruce.insights import collect_stats
from spruce.insights_cache import SummaryCache
from spruce.store import open_store

FAST = (
    "trailing-whitespace",
    "end-of-file",
    "check-toml",
    "check-yaml",
    "check-ast",
    "merge-conflict",
    "large-files",
    "ruff-format",
    "ruff-check",
    "codespell",
)
COMPREHENSIVE = ("mypy", "bandit", "vulture")
PROJECT = "/work/bench-project"
TARGET_MS = 200.0


def synthetic_job(job_id: str, started: float, tests: int, rng: random.Random) -> list[Event]:
    """One finished job's events, in seq order."""
    opening = {"workflow": "standard_quality", "project": PROJECT}
    steps: list[tuple[E, str | None, dict[str, Any]]] = [
        (E.WORKFLOW_SESSION_INITIALIZING, None, opening),
        (E.CONFIG_PHASE_COMPLETED, "config", _phase_end("config", 0.01)),
        (E.TEST_PHASE_STARTED, "tests", {"phase": "tests", "total": None, "inputs": "i" * 64}),
    ]
    phases = (
        ("fast_hooks", FAST, E.FAST_HOOKS_COMPLETED),
        ("comprehensive_hooks", COMPREHENSIVE, E.COMPREHENSIVE_HOOKS_COMPLETED),
    )
    for phase, hooks, end in phases:
        for hook in hooks:
            steps.append((E.HOOK_STARTED, f"{phase}/{hook}", {"hook": hook, "phase": phase}))
            steps.append((E.HOOK_COMPLETED, f"{phase}/{hook}", _hook_end(phase, hook, rng)))
        steps.append((end, phase, _phase_end(phase, 2.5)))
    for index in range(tests):
        nodeid = f"tests/test_m{index % 10}.py::test_{index}"
        case = {"nodeid": nodeid, "outcome": "passed", "duration": rng.uniform(0.0, 0.2)}
        steps.append((E.TEST_CASE_COMPLETED, f"tests/{nodeid}", {**case, "path": "t.py"}))
    steps.append((E.TEST_PHASE_COMPLETED, "tests", _phase_end("tests", 4.0)))
    steps.append((E.WORKFLOW_COMPLETED, None, {"status": "passed", "duration": 6.0}))
    return [
        Event(event=kind, job_id=job_id, seq=seq, step_id=step, timestamp=started + seq, data=data)
        for seq, (kind, step, data) in enumerate(steps, start=1)
    ]


def _phase_end(phase: str, duration: float) -> dict[str, Any]:
    return {"phase": phase, "status": "passed", "duration": duration}


def _hook_end(phase: str, hook: str, rng: random.Random) -> dict[str, Any]:
    return {
        "hook": hook,
        "phase": phase,
        "status": "passed",
        "duration": rng.uniform(0.01, 2.0),
        "queued": rng.uniform(0.0, 0.5),
        "exit_code": 0,
        "findings": 0,
        "cached": rng.random() < 0.3,
        "reason": None,
        "details": [],
    }


async def fill(url: str, jobs: int, tests: int) -> None:
    log = open_store(url)
    await log.open()
    rng = random.Random(7)
    try:
        for n in range(jobs):
            await log.append(synthetic_job(f"job{n:04d}", 1_700_000_000.0 + 60 * n, tests, rng))
    finally:
        await log.aclose()


async def timed(url: str, jobs: int, cache: SummaryCache | None) -> float:
    """Milliseconds for one `collect_stats` on a fresh connection."""
    log = open_store(url)
    await log.open()
    try:
        start = time.perf_counter()
        stats = await collect_stats(log, project=PROJECT, jobs=jobs, cache=cache)
        elapsed = time.perf_counter() - start
    finally:
        await log.aclose()
    assert stats["jobs"] == jobs, stats["jobs"]
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--tests", type=int, default=50, help="test cases per job")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'events.db'}?keep_jobs=none&keep_days=none"
        asyncio.run(fill(url, args.jobs, args.tests))
        cold = [asyncio.run(timed(url, args.jobs, None)) for _ in range(args.rounds)]
        cache = SummaryCache(Path(tmp) / "insights.db")
        first = asyncio.run(timed(url, args.jobs, cache))  # folds and stores every summary
        warm = [asyncio.run(timed(url, args.jobs, cache)) for _ in range(args.rounds)]
        cache.close()
    events = args.jobs * (32 + args.tests)
    print(f"spruce stats over {args.jobs} jobs ({events:,} events, SQLite), {args.rounds} rounds")
    print(f"  every job's events read and folded: median {statistics.median(cold):.0f} ms")
    print(f"  first call with the summary cache (fills it): {first:.0f} ms")
    median = statistics.median(warm)
    print(f"  summaries from the cache: median {median:.0f} ms (min {min(warm):.0f})")
    print(f"  ratio cached / uncached: {median / statistics.median(cold):.3f}")
    print(f"  target <= {TARGET_MS:.0f} ms: {'met' if median <= TARGET_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
