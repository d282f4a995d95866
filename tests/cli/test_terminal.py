"""`spruce run` in a real terminal (tmux, 100 by 14): the rows that are running stay on screen
while finished ones make room, and the closing line comes after the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workflow.runner import copy_sample

pytestmark = pytest.mark.slow
SLOW_HOOKS = ("slow-one", "slow-two")


def _project(tmp_path: Path) -> Path:
    """The clean sample plus two comprehensive checks that each take eight seconds."""
    project = copy_sample("clean", tmp_path)
    sleep = f'command = [{sys.executable!r}, "-c", "import time; time.sleep(8)"]\n'
    with (project / "pyproject.toml").open("a") as handle:
        for hook in SLOW_HOOKS:
            handle.write(
                f'\n[[tool.spruce.custom]]\nid = "{hook}"\nphase = "comprehensive_hooks"\n{sleep}'
            )
    return project


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    """The tmux command on a server of this test's own (its own socket), killed afterwards."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (.ci/run installs it)")
    command = ["tmux", "-L", f"spruce-test-{uuid.uuid4().hex[:8]}", "-f", os.devnull]
    yield command
    socket = subprocess.run(
        [*command, "display-message", "-p", "#{socket_path}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout.strip()
    subprocess.run([*command, "kill-server"], capture_output=True, check=False, timeout=10)
    if socket:
        Path(socket).unlink(missing_ok=True)


def _both_running(screen: list[str]) -> bool:
    rows = [line for line in screen if any(hook in line for hook in SLOW_HOOKS)]
    return len(rows) == 2 and all(" running" in row for row in rows)


def _screen(tmux: list[str]) -> list[str]:
    done = subprocess.run(
        [*tmux, "capture-pane", "-p", "-t", "run"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    assert done.returncode == 0, f"the tmux session is gone: {done.stderr}"
    return done.stdout.splitlines()


def test_a_14_line_terminal_keeps_the_running_hooks_in_view(
    tmp_path: Path, tmux: list[str]
) -> None:
    project = _project(tmp_path)
    env = {
        "SPRUCE_STORE": "memory://",
        "SPRUCE_CACHE_DIR": str(tmp_path / "cache"),
        "TERM": "xterm-256color",
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
    }
    exports = " ".join(f"{key}={value!r}" for key, value in env.items())
    # The terminal's size, not the LINES and COLUMNS pytest exports, must decide the layout.
    unset = "-u LINES -u COLUMNS"
    run = f"env {unset} {exports} {sys.executable!r} -m spruce run ."
    script = f"cd {str(project)!r} && {run}; sleep 300"
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "100", "-y", "14", "-s", "run", script],
        check=True,
        timeout=10,
    )
    deadline = time.monotonic() + 90
    screen: list[str] = []
    while time.monotonic() < deadline:
        screen = _screen(tmux)
        if _both_running(screen) or any(" passed in " in line for line in screen):
            break  # what we wait for, or the run ended without showing it
        time.sleep(0.2)
    if not _both_running(screen):
        pytest.fail("the running hooks never showed together:\n" + "\n".join(screen))
    (tmp_path / "screen-while-running.txt").write_text("\n".join(screen))
    assert len(screen) <= 14
    assert not any(line.strip() == "..." for line in screen), screen
    assert "more hooks" in "\n".join(screen)  # the finished fast hooks made room
    while time.monotonic() < deadline:
        screen = _screen(tmux)
        if any(" passed in " in line for line in screen):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the run never printed its closing line:\n" + "\n".join(screen))
