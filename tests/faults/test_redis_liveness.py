"""Runners on another host, a Redis outage, a `spruce serve` judging liveness.

The runner is a real `spruce run` in a UTS namespace of its own with another hostname (so the
server cannot look its pid up), the store a private redis-server the test kills and restarts,
and the judge a real `spruce serve`.  The windows are shortened through the environment
(liveness 6 s, heartbeat 0.5 s); the outage lasts more than twice the liveness window, which is
what a 40 s outage is to the default 30 s window.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from spruce.events import Event, WorkflowEvent
from spruce.store import open_store
from tests.faults.projects import (
    AFTER,
    BEFORE,
    expect_one_whole_job,
    gated_project,
    stored_events,
    wait_for_stored,
)
from tests.server.conftest import ServeProcess, start_serve, stop
from tests.store.redis_support import RedisServer, private_redis

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.slow]
JOB: Final = "elsewhere"
# SPRUCE_FAULTS_LIVENESS=30 runs them at the default windows (the outage then lasts 75 s).
LIVENESS: Final = float(os.environ.get("SPRUCE_FAULTS_LIVENESS", "6"))
OUTAGE: Final = 2.5 * LIVENESS
TIME_LIMIT: Final = 60 + 12 * LIVENESS
RUNNER_HOST: Final = "spruce-fault-runner"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis(tmp_path) as server:
        yield server


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Short windows for every spruce process the test starts (they inherit the environment)."""
    monkeypatch.setenv("SPRUCE_LIVENESS_WINDOW", str(LIVENESS))
    monkeypatch.setenv("SPRUCE_HEARTBEAT_EVERY", str(LIVENESS / 12))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def server(redis_server: RedisServer, windows: None) -> Iterator[ServeProcess]:
    served = start_serve(redis_server.url)
    try:
        yield served
    finally:
        stop(served.proc)


def _on_another_host(argv: list[str]) -> list[str]:
    """argv run in a UTS namespace of its own whose hostname is not this host's."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.fail("these tests need root and unshare(1) to give the runner another hostname")
    script = f'hostname {RUNNER_HOST} && exec "$@"'
    return [unshare, "--uts", "sh", "-c", script, "sh", *argv]


def _start_runner(url: str, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    project, gate = gated_project(tmp_path)
    argv = [sys.executable, "-m", "spruce", "run", str(project), "--workflow", "tests"]
    argv += ["--no-cache", "--store", url, "--job-id", JOB]
    runner = subprocess.Popen(
        _on_another_host(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FAULT_GATE": str(gate)},
        start_new_session=True,
    )
    return runner, gate


def _reap(runner: subprocess.Popen[str], gate: Path) -> tuple[int, str]:
    gate.touch()  # the suite's waiting test returns, whatever became of its runner
    if runner.poll() is None:
        os.killpg(runner.pid, signal.SIGKILL)
    _, stderr = runner.communicate(timeout=30)
    return runner.returncode, stderr


async def _job_status(url: str) -> str | None:
    log = open_store(url)
    await log.open()
    try:
        record = await log.get_job(JOB)
        return record.status if record else None
    finally:
        await log.aclose()


async def _wait_for_status(url: str, status: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (current := await _job_status(url)) != status:
        assert time.monotonic() < deadline, (
            f"job {JOB} is {current}, not {status}, after {timeout}s"
        )
        await asyncio.sleep(0.25)


async def _opening_host(url: str) -> object:
    first: list[Event] = await stored_events(url, JOB)
    return first[0].data["runner"]["host"]


@pytest.mark.timeout(TIME_LIMIT)
async def test_a_live_runner_outlives_a_redis_outage_and_is_ended_once_killed_9(
    redis_server: RedisServer, server: ServeProcess, tmp_path: Path
) -> None:
    url = redis_server.url
    runner, gate = _start_runner(url, tmp_path)
    try:
        await wait_for_stored(url, JOB, WorkflowEvent.TEST_CASE_COMPLETED)
        assert await _opening_host(url) == RUNNER_HOST
        await asyncio.to_thread(redis_server.stop)
        await asyncio.sleep(OUTAGE)
        await asyncio.to_thread(redis_server.start)
        await asyncio.sleep(2 * LIVENESS)  # the server reads again; the runner beats again
        assert runner.poll() is None
        assert await _job_status(url) == "running", "a live runner was declared dead"
        os.killpg(runner.pid, signal.SIGKILL)  # the runner's host is lost: no word, no end
        runner.wait(timeout=10)
        await _wait_for_status(url, "error", timeout=4 * LIVENESS + 10)
    finally:
        _reap(runner, gate)
    events = await stored_events(url, JOB)
    expect_one_whole_job(events)
    assert events[-1].event is WorkflowEvent.WORKFLOW_FAILED
    assert events[-1].data["reaped"] is True


@pytest.mark.timeout(TIME_LIMIT)
async def test_a_run_ending_during_the_outage_spills_exits_3_and_its_import_wins(
    redis_server: RedisServer, server: ServeProcess, tmp_path: Path
) -> None:
    url = redis_server.url
    runner, gate = _start_runner(url, tmp_path)
    try:
        await wait_for_stored(url, JOB, WorkflowEvent.TEST_CASE_COMPLETED)
        await asyncio.to_thread(redis_server.stop)
        gate.touch()  # the suite ends while Redis is away; the run waits 10 s, then spills
        _, stderr = await asyncio.to_thread(runner.communicate, timeout=60)
    finally:
        _reap(runner, gate)
    assert runner.returncode == 3, stderr
    found = re.search(r"kept in (\S+\.jsonl)", stderr)
    assert found is not None, stderr
    spill = Path(found.group(1))
    assert f"spruce import {spill}" in stderr
    await asyncio.to_thread(redis_server.start)
    # The runner is gone and its heartbeat stands still: the server ends the job for it.
    await _wait_for_status(url, "error", timeout=4 * LIVENESS + 10)
    loaded = subprocess.run(
        [sys.executable, "-m", "spruce", "import", str(spill), "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert await _job_status(url) == "passed"
    events = await stored_events(url, JOB)
    expect_one_whole_job(events)
    assert events[-1].event is WorkflowEvent.WORKFLOW_COMPLETED
    cases = [e for e in events if e.event is WorkflowEvent.TEST_CASE_COMPLETED]
    assert len(cases) == BEFORE + 1 + AFTER
