"""A `spruce serve` advertises its dashboard per store; readers trust only live, listening ones."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spruce.advert import (
    advertise,
    dashboard_url,
    find_dashboard,
    job_link,
    store_identity,
)


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_live_listening_server_of_the_same_store_is_found(tmp_path: Path, listening: int) -> None:
    store = f"sqlite://{tmp_path / 'events.db'}"
    url = dashboard_url("127.0.0.1", listening)
    with advertise(store, url, directory=tmp_path / "servers"):
        # The same file named with its retention options is the same store.
        assert find_dashboard(store + "?keep_days=7", directory=tmp_path / "servers") == url
        assert (
            find_dashboard(f"sqlite://{tmp_path / 'other.db'}", directory=tmp_path / "servers")
            is None
        )
    assert find_dashboard(store, directory=tmp_path / "servers") is None  # removed on exit
    assert list((tmp_path / "servers").iterdir()) == []


def test_a_killed_server_s_advert_is_ignored_and_removed(tmp_path: Path, listening: int) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    folder = tmp_path / "servers"
    folder.mkdir()
    stale = folder / f"{socket.gethostname()}-{pid}.json"
    body = {
        "store": store_identity("redis://127.0.0.1:6379/0"),
        "url": dashboard_url("127.0.0.1", listening),
        "host": socket.gethostname(),
        "pid": pid,
    }
    stale.write_text(json.dumps(body))
    assert find_dashboard("redis://127.0.0.1:6379/0", directory=folder) is None
    assert not stale.exists()


def test_an_advert_whose_port_is_closed_is_not_trusted(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # bound, never listening
        store = "redis://127.0.0.1:6379/3"
        with advertise(store, dashboard_url("127.0.0.1", closed), directory=tmp_path):
            assert find_dashboard(store, directory=tmp_path) is None


def test_memory_stores_are_never_advertised(tmp_path: Path) -> None:
    with advertise("memory://", "http://127.0.0.1:1/", directory=tmp_path):
        assert list(tmp_path.iterdir()) == []


def test_urls_for_any_bind_address() -> None:
    assert dashboard_url("0.0.0.0", 8675) == "http://127.0.0.1:8675/"
    assert dashboard_url("::", 9000) == "http://[::1]:9000/"
    assert dashboard_url("127.0.0.2", 80) == "http://127.0.0.2:80/"
    assert job_link("http://127.0.0.1:8675/", "k3x9") == "http://127.0.0.1:8675/#/job/k3x9"
