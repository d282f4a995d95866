"""The seed's three-terminal scenario with real processes: `spruce run` (or a writer) in one,
`spruce serve` in another, a WebSocket client in a third; and kill -9 of the server mid-job."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.server.conftest import (
    Reading,
    logged_events,
    read_all,
    start_serve,
    start_synthetic_job,
    stop,
    wait_for_job,
    watch,
)

pytestmark = pytest.mark.anyio
PROJECTS = Path(__file__).parent.parent / "resources" / "projects"


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_run_in_one_process_is_watched_live_through_serve_in_another(
    tmp_path: Path, serve_processes: list[subprocess.Popen[str]]
) -> None:
    store = f"sqlite://{tmp_path / 'events.db'}"
    project = shutil.copytree(PROJECTS / "failing_test", tmp_path / "project")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    server = start_serve(store)
    serve_processes.append(server.proc)
    run = subprocess.Popen(
        [sys.executable, "-m", "spruce", "run", str(project), "--store", store, "--job-id", "t3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    serve_processes.append(run)
    await wait_for_job(server.http, "t3")
    async with asyncio.timeout(120):
        live, (partial, resumed) = await asyncio.gather(
            watch(f"{server.ws}/ws/progress/t3", timeout=120),
            reconnect_after(f"{server.ws}/ws/progress/t3", first=5),
        )
    assert await asyncio.to_thread(run.wait, 60) == 1  # the failing test is a finding
    logged = await logged_events(server.http, "t3")
    assert live.messages == logged  # every event, exactly as stored, in seq order
    assert live.seqs == list(range(1, len(logged) + 1))
    assert live.messages[-1]["event"] == "workflow_failed"
    assert live.close_code == 1000
    assert partial.seqs == [1, 2, 3, 4, 5]
    assert resumed.seqs == list(range(6, len(logged) + 1)) and resumed.close_code == 1000

    replay = await watch(f"{server.ws}/ws/progress/t3")  # after the end: the whole job again
    assert replay.messages == logged and replay.close_code == 1000


async def reconnect_after(url: str, *, first: int) -> tuple[Reading, Reading]:
    """Read `first` events, hang up, reconnect with after=<last seq> and read to the end."""
    async with connect(url, max_queue=None) as ws:
        partial = await read_all(ws, limit=first)
    return partial, await watch(f"{url}?after={partial.seqs[-1]}", timeout=120)


@pytest.mark.timeout(120)
async def test_kill_9_of_the_server_mid_job_then_resume_loses_and_duplicates_nothing(
    tmp_path: Path, serve_processes: list[subprocess.Popen[str]]
) -> None:
    store = f"sqlite://{tmp_path / 'events.db'}"
    first = start_serve(store)
    serve_processes.append(first.proc)
    writer = start_synthetic_job(store, "k9", cases=100, pause=0.03)
    serve_processes.append(writer)
    await wait_for_job(first.http, "k9")
    async with connect(f"{first.ws}/ws/progress/k9") as ws:
        before = await read_all(ws, limit=20)
        first.proc.send_signal(signal.SIGKILL)
        rest_of_first = await read_all(ws)
    assert first.proc.wait(timeout=10) == -signal.SIGKILL
    assert rest_of_first.close_code == 1006  # abnormal: no close frame from a killed server
    seen = before.seqs + rest_of_first.seqs
    assert writer.poll() is None, "the job should still be running"

    second = start_serve(store, port=first.port)
    serve_processes.append(second.proc)
    after = await watch(f"{second.ws}/ws/progress/k9?after={seen[-1]}", timeout=60)
    assert await asyncio.to_thread(writer.wait, 30) == 0
    total = len(await logged_events(second.http, "k9"))
    assert seen + after.seqs == list(range(1, total + 1))
    assert after.close_code == 1000


def test_a_non_loopback_bind_without_a_token_refuses_to_start() -> None:
    env = {key: val for key, val in os.environ.items() if key != "SPRUCE_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "spruce", "serve", "--host", "0.0.0.0", "--store", "memory://"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 2
    assert "without a token" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_stops_serve_gracefully_with_exit_0(
    tmp_path: Path, serve_processes: list[subprocess.Popen[str]]
) -> None:
    server = start_serve(f"sqlite://{tmp_path / 'events.db'}")
    assert stop(server.proc, sig=signal.SIGTERM) == 0
