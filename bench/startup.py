"""Benchmark: median wall time of `spruce --help` in a fresh interpreter (target <= 200 ms),
beside `python -c pass` for the interpreter's own floor.  Usage: python bench/startup.py [N]"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_run(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=30
        )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    floor = median_run([sys.executable, "-c", "pass"], runs)
    spruce = median_run([sys.executable, "-m", "spruce", "--help"], runs)
    print(f"python -c pass : median {floor * 1000:6.1f} ms")
    print(f"spruce --help  : median {spruce * 1000:6.1f} ms  (target <= 200 ms; "
          f"{spruce / floor:.1f}x the bare interpreter)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
