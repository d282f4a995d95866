"""Helpers for server tests: an in-process uvicorn on a free port, `spruce serve` as a process,
and a WebSocket reader that records every frame and the close code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from spruce.container import Services, open_services
from spruce.jobs import JobRunner
from spruce.server import listen
from spruce.server.app import create_app
from spruce.server.bridge import BridgeLimits
from spruce.server.security import loopback_hosts, own_origins
from tests.conftest import free_port

HERE = Path(__file__).parent
PROJECTS = HERE.parent / "resources" / "projects"
SYNTHETIC_JOB = HERE / "synthetic_job.py"


class OnLoopback:
    """Something listening on 127.0.0.1:`port`: its HTTP and WebSocket base URLs."""

    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@dataclass
class Served(OnLoopback):
    """An app running under uvicorn in this process."""

    services: Services
    app: Starlette
    port: int


@contextlib.asynccontextmanager
async def serve_in_process(
    services: Services,
    *,
    runner: Any = None,
    roots: Sequence[Path] = (),
    token: str | None = None,
    limits: BridgeLimits | None = None,
) -> AsyncIterator[Served]:
    """Run create_app under a real uvicorn on a free loopback port until the block ends."""
    port = free_port()
    app = create_app(
        services,
        runner,
        roots=roots,
        token=token,
        allowed_origins=own_origins("127.0.0.1", port),
        allowed_hosts=loopback_hosts("127.0.0.1"),
        limits=limits,
    )
    sock = listen.bind("127.0.0.1", port)
    server = listen.Server(listen.config(app, host="127.0.0.1", port=port))
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield Served(services, app, port)
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await task
        sock.close()


@contextlib.asynccontextmanager
async def memory_server(**kwargs: Any) -> AsyncIterator[Served]:
    """Services on a fresh memory:// log, served in process."""
    async with (
        open_services(store_url="memory://") as services,
        serve_in_process(services, **kwargs) as served,
    ):
        yield served


@dataclass
class Reading:
    """What a WebSocket client saw: every frame (decoded JSON) and how the socket closed."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    @property
    def seqs(self) -> list[int]:
        return [int(m["seq"]) for m in self.messages]


async def read_all(ws: ClientConnection, *, limit: int | None = None) -> Reading:
    """Read until the server closes (or `limit` frames arrived)."""
    reading = Reading()
    try:
        while limit is None or len(reading.messages) < limit:
            reading.messages.append(json.loads(await ws.recv()))
    except ConnectionClosed:
        pass
    if limit is None or ws.close_code is not None:
        reading.close_code = ws.close_code
        reading.close_reason = ws.close_reason or ""
    return reading


async def watch(url: str, *, timeout: float = 30, **kwargs: Any) -> Reading:
    """Connect, read to the close, return what was seen."""
    async with asyncio.timeout(timeout), connect(url, **kwargs) as ws:
        return await read_all(ws)


@pytest.fixture
async def runner_server(tmp_path: Path) -> AsyncIterator[tuple[Served, Path]]:
    """A server with a real JobRunner allowed under tmp_path/root."""
    root = tmp_path / "root"
    root.mkdir()
    async with open_services(store_url="memory://") as services:
        runner = JobRunner(services, roots=[root])
        try:
            async with serve_in_process(services, runner=runner, roots=[root]) as served:
                yield served, root
        finally:
            await runner.aclose()


# processes ---------------------------------------------------------------------------------


@dataclass
class ServeProcess(OnLoopback):
    """`spruce serve` running as a child process."""

    proc: subprocess.Popen[str]
    port: int


def start_serve(store_url: str, *args: str, port: int | None = None) -> ServeProcess:
    """Start `spruce serve` and wait until it answers /healthz."""
    import httpx

    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spruce", "serve", "--port", str(port), "--store", store_url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"spruce serve exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return ServeProcess(proc, port)
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError("spruce serve did not come up in 20 s")


def stop(proc: subprocess.Popen[str], *, sig: int = signal.SIGTERM) -> int:
    """Signal the process group, wait, escalate to SIGKILL; returns the exit code."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=5)
    finally:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def serve_processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; every one is stopped and reaped at the end."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            stop(proc, sig=signal.SIGKILL)
        else:
            stop(proc)


def start_synthetic_job(
    store_url: str, job_id: str, *, cases: int = 20, pause: float = 0.0, fail: bool = False
) -> subprocess.Popen[str]:
    """A writer process publishing one job into the store."""
    args = [sys.executable, str(SYNTHETIC_JOB), store_url, job_id, "--cases", str(cases)]
    args += ["--pause", str(pause)] + (["--fail"] if fail else [])
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=HERE.parent.parent,
    )


async def wait_for_job(base: str, job_id: str, *, timeout: float = 60) -> None:
    """Poll the API until the job's first event is in the log."""
    async with asyncio.timeout(timeout), httpx.AsyncClient() as client:
        while (await client.get(f"{base}/api/jobs/{job_id}/events")).status_code != 200:
            await asyncio.sleep(0.02)


async def logged_events(base: str, job_id: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base}/api/jobs/{job_id}/events", params={"limit": 1000})
        events: list[dict[str, object]] = response.json()["events"]
        return events
