"""How many processes run the test suite (`[tool.spruce] test_workers`), how pytest-xdist or
spruce's own shards are asked for, and how the shards' outcomes merge into one run's.

"auto" gains only past a few seconds of tests: each extra process starts pytest and collects the
whole suite again, which costs about as much as a second of small tests (docs/running.md).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Literal

import msgspec

from spruce.hooks.base import TestCase
from spruce.workflow.cache import write_atomically
from spruce.workflow.process import ProcessResult
from spruce.workflow.toolenv import ToolEnv

TIMES_FILE: Final = "pytest-times.json"
SECONDS_PER_WORKER: Final = 1.5  # "auto": a worker for each this many seconds of tests
PER_TEST_OVERHEAD: Final = 0.0002  # pytest's own seconds per test, beside its durations
_NO_TESTS: Final = 5
_MAX_FILES: Final = 20_000  # the times of at most this many test files are kept

Times = dict[str, tuple[float, int]]  # test file -> (seconds its tests took, how many ran)


def load_times(state: Path | None) -> Times:
    """The last measured time of each test file (empty before the first run, or unreadable)."""
    if state is None:
        return {}
    try:
        return msgspec.json.decode((state / TIMES_FILE).read_bytes(), type=Times)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return {}


def save_times(state: Path | None, times: Times, cases: Sequence[TestCase]) -> None:
    """Keep the times of the files that ran this time; the others' stay as measured before."""
    if state is None or not cases:
        return
    ran: dict[str, list[float]] = {}
    for case in cases:
        if case.when != "collect":
            entry = ran.setdefault(case.nodeid.split("::")[0], [0.0, 0])
            entry[0] += case.duration
            entry[1] += 1
    merged = {**times, **{path: (seconds, int(count)) for path, (seconds, count) in ran.items()}}
    if len(merged) > _MAX_FILES:
        return
    write_atomically(state / TIMES_FILE, msgspec.json.encode(merged))


def per_test_costs(times: Times) -> dict[str, float]:
    """Seconds a test of each file took last time: what the shards are balanced by."""
    return {path: seconds / count for path, (seconds, count) in times.items() if count}


def estimate(times: Times, carried: Iterable[str]) -> float | None:
    """Seconds the tests that will run should take; None before the suite was ever measured."""
    if not times:
        return None
    left = {path: count for path, (_, count) in times.items()}
    for nodeid in carried:
        path = nodeid.split("::")[0]
        if left.get(path):
            left[path] -= 1
    costs = per_test_costs(times)
    return sum((costs.get(path, 0.0) + PER_TEST_OVERHEAD) * count for path, count in left.items())


def choose_workers(setting: int | Literal["auto"], *, seconds: float | None, cpus: int) -> int:
    """An explicit count as given; "auto": the usable CPUs, but one for a short suite."""
    if setting != "auto":
        return setting
    if seconds is None:
        return 1  # never measured: this run measures it
    return max(1, min(cpus, int(seconds // SECONDS_PER_WORKER)))


def parallel_by_project(args: Sequence[str]) -> bool:
    """Whether the project's own pytest arguments already choose xdist's workers (`-n`)."""
    return any(
        arg in ("-n", "--numprocesses") or arg.startswith(("--numprocesses=", "-n")) for arg in args
    )


def xdist_usable(env: ToolEnv, args: Sequence[str]) -> bool:
    """Whether the project's interpreter has pytest-xdist and its arguments do not disable it."""
    if env.version("pytest-xdist") is None:
        return False
    pairs = itertools.pairwise([*args, ""])
    return not any(
        arg == "-pno:xdist" or (arg == "-p" and value == "no:xdist") for arg, value in pairs
    )


def write_shard(scratch: Path, index: int, count: int, times: Times) -> Path:
    """The settings file of shard `index` that the reporting plugin reads."""
    path = scratch / f"pytest-shard-{index}.json"
    settings = {"index": index, "count": count, "costs": per_test_costs(times)}
    path.write_text(json.dumps(settings), encoding="utf-8")
    return path


def merge_exit_codes(codes: Sequence[int | None]) -> int | None:
    """One run's exit code: 5 (no tests) only when no shard had any, an unusual code (an
    interrupted or broken run) before 1 (failing tests) before 0."""
    if any(code is None for code in codes):
        return None
    found = [code for code in codes if code is not None and code != _NO_TESTS]
    if not found:
        return _NO_TESTS
    unusual = [code for code in found if code not in (0, 1)]
    return unusual[0] if unusual else max(found)


def merge_results(results: Sequence[ProcessResult]) -> ProcessResult:
    """The shards' processes as one: merged exit code, output in shard order, the longest time."""
    if len(results) == 1:
        return results[0]
    return ProcessResult(
        exit_code=merge_exit_codes([result.exit_code for result in results]),
        stdout="\n".join(result.stdout.rstrip("\n") for result in results if result.stdout),
        stderr="\n".join(result.stderr.rstrip("\n") for result in results if result.stderr),
        duration=max(result.duration for result in results),
        timed_out=any(result.timed_out for result in results),
    )
