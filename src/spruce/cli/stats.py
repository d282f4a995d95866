"""`spruce stats`: where a project's time goes over its last N jobs (durations, trends, queued
time, cache hits, the slowest and the flaky tests), from the event log."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `spruce stats`."""
    parser = commands.add_parser(
        "stats",
        help="phase and hook durations, trends, cache hits, slowest and flaky tests",
        description="Insights over the last N finished jobs of PATH (default: every project).",
    )
    parser.add_argument("path", nargs="?", metavar="PATH", help="project directory")
    parser.add_argument(
        "--jobs", type=_positive, default=50, metavar="N", help="the last N jobs (default 50)"
    )
    parser.add_argument("--json", action="store_true", help="the spruce.stats/1 document")
    parser.add_argument(
        "--store", metavar="URL", help="event log URL (default: $SPRUCE_STORE or the SQLite file)"
    )
    parser.set_defaults(handler=main)


def _positive(text: str) -> int:
    from spruce.insights import MAX_JOBS

    value = int(text)
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_JOBS}")
    return value


def main(args: argparse.Namespace) -> int:
    """Print the stats of the chosen jobs."""
    import asyncio
    import json
    from pathlib import Path

    from spruce.insights import collect_stats
    from spruce.insights_cache import SummaryCache, default_path
    from spruce.store import open_store, resolve_store_url

    project = str(Path(args.path).expanduser().resolve()) if args.path else None

    async def go() -> dict[str, Any]:
        log = open_store(resolve_store_url(args.store))
        await log.open()
        cache = SummaryCache(default_path())
        try:
            return await collect_stats(log, project=project, jobs=args.jobs, cache=cache)
        finally:
            cache.close()
            await log.aclose()

    stats = asyncio.run(go())
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(render_stats(stats), end="")
    return 0


def render_stats(stats: dict[str, Any]) -> str:
    """The stats document as aligned text tables."""
    where = stats["project"] or "every project"
    lines = [f"spruce stats: {stats['jobs']} finished job(s) of {where}"]
    if not stats["jobs"]:
        return lines[0] + " (run `spruce run` first)\n"
    lines += ["", *_table(["phase", "runs", "p50", "p95", "trend"], _phase_rows(stats))]
    header = ["hook", "phase", "runs", "p50", "p95", "queued", "cached", "failed", "trend"]
    lines += ["", *_table(header, _hook_rows(stats))]
    if stats["slowest_tests"]:
        rows = [
            [t["nodeid"], str(t["runs"]), _secs(t["p50"]), _secs(t["max"])]
            for t in stats["slowest_tests"]
        ]
        lines += ["", *_table(["slowest tests", "runs", "p50", "max"], rows)]
    if stats["flaky_tests"]:
        rows = [
            [t["nodeid"], str(t["passed"]), str(t["failed"]), t["last_job"] or "-"]
            for t in stats["flaky_tests"]
        ]
        header = ["flaky tests (same inputs)", "passed", "failed", "last failed in"]
        lines += ["", *_table(header, rows)]
    return "\n".join(lines) + "\n"


def _phase_rows(stats: dict[str, Any]) -> list[list[str]]:
    return [
        [p["name"], str(p["runs"]), _secs(p["p50"]), _secs(p["p95"]), _trend(p["trend"])]
        for p in stats["phases"]
    ]


def _hook_rows(stats: dict[str, Any]) -> list[list[str]]:
    return [
        [
            h["id"],
            h["phase"],
            str(h["runs"]),
            _secs(h["p50"]),
            _secs(h["p95"]),
            _secs(h["queued_p50"]),
            _percent(h["cache_hit_rate"]),
            _percent(h["failure_rate"]),
            _trend(h["trend"]),
        ]
        for h in stats["hooks"]
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned first columns of names, right-aligned numbers."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    names = 2 if header[1] == "phase" else 1

    def line(cells: list[str]) -> str:
        parts = [
            cell.ljust(width) if index < names else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line([h.upper() for h in header]), *(line(row) for row in rows)]


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{round(100 * value)}%"


def _trend(value: float | None) -> str:
    """newer / older median: above 1 is slower lately."""
    return "-" if value is None else f"{value:.2f}x"
