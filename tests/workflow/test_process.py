"""Subprocesses: exit codes and output come back; a timeout kills the whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from spruce.workflow.process import _group_has_live_member, run_process
from tests.workflow.runner import alive

pytestmark = pytest.mark.anyio


async def test_exit_code_and_output_are_returned(tmp_path: Path) -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = await run_process([sys.executable, "-c", code], cwd=tmp_path, timeout=30)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.timed_out


async def test_a_timeout_kills_the_child_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    code = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid));"
        "time.sleep(60)"
    )
    result = await run_process([sys.executable, "-c", code], cwd=tmp_path, timeout=2)
    assert result.timed_out and result.exit_code is None
    assert not alive(int(pid_file.read_text()))


async def test_output_beyond_the_limit_is_dropped_not_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("spruce.workflow.process.OUTPUT_LIMIT", 1000)
    code = "import sys; sys.stdout.write('x' * 100000)"
    result = await run_process([sys.executable, "-c", code], cwd=tmp_path, timeout=30)
    assert result.exit_code == 0 and len(result.stdout) == 1000


def test_a_group_counts_as_live_until_its_last_running_member_is_gone(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        assert _group_has_live_member(sleeper.pid)
        os.killpg(sleeper.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            sleeper.wait(timeout=10)
        assert not _group_has_live_member(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
