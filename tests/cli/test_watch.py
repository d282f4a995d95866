"""`spruce run --watch` on a real git repository: a saved change starts a job, an ignored one
does not, a newer change cancels the running job, Ctrl-C exits 130 and leaves no process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.git_support import add_slow_hook, git_sample, spruce_env
from tests.workflow.runner import copy_sample

pytestmark = pytest.mark.slow


class Watcher:
    """A `spruce run --watch` process and its stderr, read as it grows."""

    def __init__(self, project: Path, *args: str) -> None:
        self.log = project.parent / "watch.log"
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "spruce", "run", "--watch", *args],
                cwd=project,
                env=spruce_env(project.parent),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, *, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.text().count(needle) < count:
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, f"no {needle!r} x{count} in:\n{self.text()}"
            time.sleep(0.05)


@pytest.fixture
def watcher_of(tmp_path: Path) -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        if watcher.process.poll() is None:
            os.killpg(watcher.process.pid, signal.SIGKILL)
            watcher.process.wait(timeout=30)


def test_a_save_starts_a_new_job_and_an_ignored_file_does_not(
    tmp_path: Path, watcher_of: list[Watcher]
) -> None:
    project = git_sample("clean", tmp_path)
    (project / ".gitignore").write_text("scratch.txt\n")
    watcher = Watcher(project, "--fast", "--hook", "check-ast")
    watcher_of.append(watcher)
    watcher.wait_for("watching for changes")
    (project / "scratch.txt").write_text("ignored\n")
    (project / "calc.py").write_text("VALUE = 2\n")
    watcher.wait_for("watching for changes", count=2)
    assert watcher.text().count("spruce: job ") == 2
    assert "changed: calc.py" in watcher.text() and "scratch.txt" not in watcher.text()


def test_the_caches_its_own_tools_write_do_not_start_another_job(
    tmp_path: Path, watcher_of: list[Watcher]
) -> None:
    """Outside git nothing says .ruff_cache or __pycache__ are not sources; ruff and the tests
    write them while the watched job runs."""
    project = copy_sample("clean", tmp_path)
    watcher = Watcher(project, "--hook", "ruff-check", "--hook", "pytest")
    watcher_of.append(watcher)
    watcher.wait_for("watching for changes")
    (project / "calc.py").write_text((project / "calc.py").read_text() + "\nVALUE = 2\n")
    watcher.wait_for("watching for changes", count=2)
    time.sleep(1.5)  # past the debounce: a change the second job's tools made would show now
    assert watcher.text().count("spruce: job ") == 2, watcher.text()
    assert (project / ".ruff_cache").is_dir() and "changed: calc.py" in watcher.text()
    assert ".ruff_cache" not in watcher.text() and "__pycache__" not in watcher.text()


def test_a_newer_change_cancels_the_running_job_and_ctrl_c_leaves_nothing(
    tmp_path: Path, watcher_of: list[Watcher]
) -> None:
    project = git_sample("clean", tmp_path)
    pids = tmp_path / "pids"
    add_slow_hook(project, pids)
    watcher = Watcher(project, "--fast", "--hook", "slow")
    watcher_of.append(watcher)
    watcher.wait_for("spruce: job ")
    while not pids.exists():
        time.sleep(0.05)
    (project / "calc.py").write_text("VALUE = 2\n")
    watcher.wait_for("spruce: job ", count=2)
    while len(pids.read_text().split()) < 2:
        time.sleep(0.05)
    first, second = (int(pid) for pid in pids.read_text().split())
    assert not _alive(first)  # the superseded job's tool was killed
    watcher.process.send_signal(signal.SIGINT)
    assert watcher.process.wait(timeout=60) == 130
    assert not _alive(second)
    assert "interrupted" in watcher.text()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is already dead; only its parent has not reaped it yet.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"
