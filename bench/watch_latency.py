"""Benchmark: how long after a file is saved `spruce run --watch` starts its new job (target
< 1 s). Saves a file N times in a sample git project and times, for each save, the moment the
watcher prints the new job's id. Usage: python bench/watch_latency.py [N]"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "resources" / "projects" / "clean"
GIT = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
       "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid"}  # fmt: skip


def wait_count(log: Path, needle: str, count: int, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count(needle) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {needle!r}:\n{log.read_text()}")
        time.sleep(0.002)
    return time.monotonic()


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "clean"
        shutil.copytree(SAMPLE, project)
        env = {**os.environ, **GIT, "SPRUCE_STORE": "memory://", "SPRUCE_CACHE_DIR": tmp}
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
            subprocess.run(["git", *args], cwd=project, env=env, check=True, timeout=30)
        log = Path(tmp) / "watch.log"
        with log.open("wb") as err:
            watcher = subprocess.Popen(
                [sys.executable, "-m", "spruce", "run", "--watch", "--fast", "--hook", "check-ast"],
                cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        try:
            wait_count(log, "watching for changes", 1)
            samples = []
            for number in range(runs):
                saved = time.monotonic()
                (project / "calc.py").write_text(f"VALUE = {number}\n")
                started = wait_count(log, "spruce: job ", number + 2)
                samples.append(started - saved)
                wait_count(log, "watching for changes", number + 2)
        finally:
            watcher.send_signal(signal.SIGINT)
            code = watcher.wait(timeout=60)
    median, worst = statistics.median(samples) * 1000, max(samples) * 1000
    print(f"save -> new job: median {median:.0f} ms, max {worst:.0f} ms over {runs} saves "
          f"(target < 1000 ms); exit {code}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
