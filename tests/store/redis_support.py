"""Redis for tests: a namespace of its own on the shared server, or a private server process.

Redis tests never skip: when the server is unreachable they fail and say how to start it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
import redis

from tests.conftest import free_port

SHARED_URL: Final = os.environ.get("SPRUCE_TEST_REDIS", "redis://127.0.0.1:6379/0")
START_HINT: Final = (
    "start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''"
    " --appendonly no"
)


def require_shared_redis() -> None:
    """Fail the test (never skip it) when the shared Redis does not answer."""
    client = redis.Redis.from_url(SHARED_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {SHARED_URL} is unreachable ({exc}); {START_HINT}", pytrace=False)
    finally:
        client.close()


def delete_namespace(url: str, namespace: str) -> None:
    """Remove every key of one namespace."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@contextlib.contextmanager
def isolated_store_url() -> Iterator[str]:
    """A store URL on the shared Redis with a fresh namespace, deleted afterwards."""
    require_shared_redis()
    namespace = f"spruce-test-{uuid.uuid4().hex[:12]}"
    try:
        yield f"{SHARED_URL.rstrip('/')}/{namespace}"
    finally:
        delete_namespace(SHARED_URL, namespace)


def contract_url(request: pytest.FixtureRequest) -> str:
    """For the contract suite: an isolated namespace, cleaned up when the test ends."""
    manager = isolated_store_url()
    url = manager.__enter__()
    request.addfinalizer(lambda: manager.__exit__(None, None, None))
    return url


class RedisServer:
    """A redis-server process of a test's own on a loopback port, restartable on that port.

    Every write is fsynced to an append-only file before Redis answers, so a restart keeps
    everything the clients were told was stored.
    """

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; the outage tests need it", pytrace=False)
        self._process = subprocess.Popen(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server exited with {self._process.returncode}:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"redis-server did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        """Kill the server at once, as a crash would; its append-only file keeps the data."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A RedisServer of the test's own under tmp_path/redis, started, and stopped at the end."""
    data = tmp_path / "redis"
    data.mkdir()
    server = RedisServer(data, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
