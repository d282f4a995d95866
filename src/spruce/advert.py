"""How `spruce run` finds a dashboard to point at: each `spruce serve` leaves a small file in
spruce's state directory naming its store and its URL, and removes it when it stops.

A reader trusts a file only when its server is on this host, its process is alive and its port
accepts a connection; a file left by a killed server is removed by the next reader.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from spruce.workflow.process import process_exists

_CONNECT_TIMEOUT: Final = 0.2  # seconds; the server is on this host
_MAX_FILES: Final = 64  # adverts read at most (one per running server)


def default_directory() -> Path:
    """`servers/` in the user's state directory for spruce (beside the default SQLite log)."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("spruce")) / "servers"


def store_identity(store_url: str) -> str:
    """The store a URL names, whatever its options: the SQLite file's resolved path, else the
    URL without its query."""
    if store_url.startswith("sqlite:"):
        from spruce.store import sqlite_path

        return f"sqlite:{sqlite_path(store_url).resolve()}"
    return store_url.split("?", 1)[0]


@contextlib.contextmanager
def advertise(store_url: str, url: str, *, directory: Path | None = None) -> Iterator[None]:
    """Say, while the block runs, that the dashboard of `store_url` is served at `url`."""
    if store_url.startswith("memory:"):  # private to this process: nobody else can watch it
        yield
        return
    folder = directory or default_directory()
    path = folder / f"{socket.gethostname()}-{os.getpid()}.json"
    body = {
        "store": store_identity(store_url),
        "url": url,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(body), encoding="utf-8")
        temporary.replace(path)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def dashboard_url(host: str, port: int) -> str:
    """The address a browser on this host opens for a server bound to `host`:`port`."""
    if host in ("0.0.0.0", "::", ""):  # bound to every address: loopback is one of them
        host = "127.0.0.1" if host != "::" else "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def job_link(dashboard: str, job_id: str) -> str:
    """The dashboard's page of one job."""
    return f"{dashboard.rstrip('/')}/#/job/{job_id}"


def find_dashboard(store_url: str, *, directory: Path | None = None) -> str | None:
    """The URL of a live `spruce serve` on this host reading `store_url`, if there is one."""
    folder = directory or default_directory()
    wanted = store_identity(store_url)
    try:
        paths = sorted(folder.glob("*.json"))[:_MAX_FILES]
    except OSError:
        return None
    for path in paths:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(body, dict) or body.get("host") != socket.gethostname():
            continue
        if not process_exists(body.get("pid")):
            with contextlib.suppress(OSError):
                path.unlink()  # its server was killed before it could remove it
            continue
        url = body.get("url")
        if body.get("store") == wanted and isinstance(url, str) and _listening(url):
            return url
    return None


def _listening(url: str) -> bool:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=_CONNECT_TIMEOUT):
            return True
    except OSError:
        return False
