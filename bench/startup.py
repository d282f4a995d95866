"""Benchmark: median wall time of `spruce --help` in a fresh interpreter (target <= 200 ms,
goal <= 50 ms), beside `python -c pass` for the interpreter's own floor. The two are run
alternately, so that both see the same load on a busy machine.

Usage: python bench/startup.py [N] [--peer SRC]   (--peer: also time the spruce in SRC, e.g.
another checkout's src/, interleaved the same way)"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def one_run(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=30, env=env
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("runs", nargs="?", type=int, default=20)
    parser.add_argument("--peer", metavar="SRC", help="another spruce source tree to compare")
    args = parser.parse_args()
    commands = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "spruce --help": ([sys.executable, "-m", "spruce", "--help"], None),
    }
    if args.peer:
        peer_env = {**os.environ, "PYTHONPATH": os.path.abspath(args.peer)}
        commands["peer --help"] = ([sys.executable, "-m", "spruce", "--help"], peer_env)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, (argv, env) in commands.items():
            samples[name].append(one_run(argv, env))
    floor = statistics.median(samples["python -c pass"])
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:15}: median {median * 1000:6.1f} ms  ({median / floor:.1f}x the bare "
              "interpreter)")  # fmt: skip
    spruce = statistics.median(samples["spruce --help"])
    print(f"spruce --help target <= 200 ms (goal <= 50 ms): {spruce * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
