"""Benchmark: the pytest hook on one process against several (`test_workers`), on a real sdist.

Times `spruce run --hook pytest --all-tests` on idna (~6,400 tests, one file holding almost all
of them) with test_workers 1, 2 (spruce's shards: pytest-xdist disabled), 2 with pytest-xdist
when it is installed, and "auto" (after a measured run: its times are what auto decides by).
Prints medians and the ratio against one process.  Usage: python bench/test_workers.py [--repeat N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edit_loop import pytest_args
from workflow import fetch

PY: Final = sys.executable


def configs() -> dict[str, tuple[object, list[str], bool]]:
    """label -> (test_workers, the pytest hook's args, --no-cache)."""
    own = [*pytest_args(), "-p", "no:xdist"]
    chosen: dict[str, tuple[object, list[str], bool]] = {
        "1 process": (1, own, True),
        "2 shards": (2, own, True),
    }
    if importlib.util.find_spec("xdist"):
        chosen["2 xdist workers"] = (2, list(pytest_args()), True)
    # With the cache (the test map recorded, as on a developer's machine), where auto applies.
    chosen["1 process, map"] = (1, own, False)
    chosen["2 shards, map"] = (2, own, False)
    chosen["auto, map"] = ("auto", own, False)
    return chosen


def configure(project: Path, original: str, workers: object, args: list[str]) -> None:
    settings = f"[tool.spruce]\ntest_workers = {json.dumps(workers)}\n"
    settings += f"[tool.spruce.hooks.pytest]\nargs = {json.dumps(args)}\n"
    (project / "pyproject.toml").write_text(original + "\n" + settings)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    wall = time.perf_counter() - started
    document = json.loads(done.stdout or "{}")
    hooks = [h for phase in document.get("phases", []) for h in phase["hooks"]]
    pytest_hook: dict[str, object] = next((h for h in hooks if h["id"] == "pytest"), {})
    return wall, {"workers": pytest_hook.get("workers"), "tests": document.get("tests", {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--package", default="idna==3.20")
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="spruce-test-workers-"))
    try:
        project = workspace / "project"
        shutil.copytree(fetch(args.package), project)
        original = (project / "pyproject.toml").read_text()
        cache = workspace / "cache"
        env = {**os.environ, "SPRUCE_CACHE_DIR": str(cache)}
        store = f"sqlite://{workspace / 'events.db'}"
        spruce = [PY, "-m", "spruce", "run", str(project), "--hook", "pytest", "--all-tests"]
        spruce += ["--store", store, "--format", "json"]
        walls: dict[str, list[float]] = {}
        seen: dict[str, dict[str, object]] = {}
        for _ in range(args.repeat):
            for label, (workers, pytest_args_, no_cache) in configs().items():
                configure(project, original, workers, pytest_args_)
                # No result cache or test map, but the test times auto decides by (the first
                # round measures them with one process).
                _forget_results(cache)
                if label == "auto, map" and not (cache / "state").exists():
                    configure(project, original, 1, pytest_args_)
                    timed(spruce, project, env)
                    _forget_results(cache)
                    configure(project, original, workers, pytest_args_)
                argv = [*spruce, "--no-cache"] if no_cache else spruce
                wall, seen[label] = timed(argv, project, env)
                walls.setdefault(label, []).append(wall)
        base = statistics.median(walls["1 process"])
        mapped = statistics.median(walls["1 process, map"])
        print(f"{args.package}: spruce run --hook pytest --all-tests, {args.repeat} rounds")
        for label, times in walls.items():
            median = statistics.median(times)
            ratio = median / (mapped if label.endswith("map") else base)
            tests = seen[label]["tests"]
            assert isinstance(tests, dict)
            print(
                f"  {label:<16} median {median:6.2f}s  {ratio:5.2f}x"
                f"  workers={seen[label]['workers']}  passed={tests.get('passed')}"
                f" failed={tests.get('failed')}  runs: {', '.join(f'{t:.2f}' for t in times)}"
            )
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    return 0


def _forget_results(cache: Path) -> None:
    """Drop the result cache and the test map; keep the measured times (`state/`)."""
    for entry in cache.iterdir() if cache.exists() else ():
        if entry.name != "state":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


if __name__ == "__main__":
    sys.exit(main())
