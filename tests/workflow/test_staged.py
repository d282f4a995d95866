"""`spruce run --staged` gives unstaged edits back after Ctrl-C, and after a kill -9 on the next
run; it never overwrites an edit made since."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.git_support import add_slow_hook, git, git_sample, spruce, spruce_env

pytestmark = pytest.mark.slow
UNSTAGED = b"VALUE = 2\r\n# unstaged, CRLF, no final newline \xc3\xa9"


def slow_project(tmp_path: Path) -> tuple[Path, Path]:
    """A repository whose custom hook writes its pid and sleeps; a staged and an unstaged edit."""
    project = git_sample("clean", tmp_path)
    pid_file = tmp_path / "hook.pid"
    add_slow_hook(project, pid_file)
    (project / "calc.py").write_text("VALUE = 1\n")
    git(project, "add", "calc.py")
    (project / "calc.py").write_bytes(UNSTAGED)
    return project, pid_file


def start_staged_run(project: Path, pid_file: Path) -> subprocess.Popen[bytes]:
    log = project.parent / "spruce.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "spruce", "run", "--fast", "--staged", "--hook", "slow"],
            cwd=project,
            env=spruce_env(project.parent),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the slow hook never started"
        time.sleep(0.05)
    # While the run goes, the work tree holds the staged content.
    assert (project / "calc.py").read_bytes() == b"VALUE = 1\n"
    return process


def test_ctrl_c_puts_the_unstaged_edit_back(tmp_path: Path) -> None:
    project, pid_file = slow_project(tmp_path)
    process = start_staged_run(project, pid_file)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    assert (project / "calc.py").read_bytes() == UNSTAGED
    assert git(project, "diff", "--cached", "--name-only").split() == ["calc.py"]


def test_after_a_kill_9_the_next_run_puts_the_unstaged_edit_back(tmp_path: Path) -> None:
    project, pid_file = slow_project(tmp_path)
    process = start_staged_run(project, pid_file)
    process.kill()
    process.wait(timeout=30)
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)  # the hook the killed run left
    assert (project / "calc.py").read_bytes() == b"VALUE = 1\n"
    done = spruce(project, "run", "--fast", "--hook", "check-ast")
    assert done.returncode == 0, done.stderr
    assert "restored the unstaged changes" in done.stderr
    assert (project / "calc.py").read_bytes() == UNSTAGED
    assert not list((tmp_path / "state").glob("spruce/staged/*/*/manifest.json"))


def test_after_a_kill_9_an_edit_made_since_is_kept_and_the_copy_named(tmp_path: Path) -> None:
    project, pid_file = slow_project(tmp_path)
    process = start_staged_run(project, pid_file)
    process.kill()
    process.wait(timeout=30)
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    (project / "calc.py").write_text("VALUE = 3  # typed after the crash\n")
    done = spruce(project, "run", "--fast", "--hook", "check-ast")
    assert "were not put back into calc.py (changed since)" in done.stderr
    assert (project / "calc.py").read_text() == "VALUE = 3  # typed after the crash\n"
    copies = list((tmp_path / "state").glob("spruce/staged/*/*/0.bin"))
    assert [copy.read_bytes() for copy in copies] == [UNSTAGED]


def test_an_error_after_setting_aside_still_puts_the_edit_back(tmp_path: Path) -> None:
    project, _ = slow_project(tmp_path)
    done = spruce(project, "run", "--fast", "--staged", "--store", "nosuch://x")
    assert done.returncode == 2 and "nosuch" in done.stderr, done.stderr
    assert (project / "calc.py").read_bytes() == UNSTAGED
    assert not list((tmp_path / "state").glob("spruce/staged/*/*/manifest.json"))
