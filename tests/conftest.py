"""Fixtures every test module may use: the anyio backend, a free loopback port, a SQLite URL."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """spruce runs on asyncio (uvicorn, the MCP SDK); async tests do too."""
    return "asyncio"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite event log file for one test."""
    return f"sqlite://{tmp_path / 'events.db'}"
