"""`spruce run` names the dashboard page of its job when a `spruce serve` reads the same store,
and the `spruce watch` command otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.conftest import start_serve, stop
from tests.workflow.runner import copy_sample

pytestmark = pytest.mark.slow


def _run(project: Path, store: str, job_id: str, cache: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "spruce", "run", str(project), "--fast", "--job-id", job_id],
        capture_output=True,
        text=True,
        env={**os.environ, "SPRUCE_CACHE_DIR": str(cache), "SPRUCE_STORE": store},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_hint_names_the_dashboard_only_while_a_server_reads_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # adverts of this test only
    store = f"sqlite://{tmp_path / 'events.db'}"
    project = copy_sample("clean", tmp_path)
    served = start_serve(store)
    try:
        hint = _run(project, store, "with-server", tmp_path / "cache")
        page = f"http://127.0.0.1:{served.port}/#/job/with-server"
        assert f"watch it at {page} or with `spruce watch with-server`" in hint
        other = _run(project, f"sqlite://{tmp_path / 'other.db'}", "other-store", tmp_path / "c")
        assert "http://" not in other  # that server reads another store
    finally:
        stop(served.proc)
    assert list((tmp_path / "state" / "spruce" / "servers").iterdir()) == []
    hint = _run(project, store, "no-server", tmp_path / "cache")
    assert "watch it with `spruce watch no-server`" in hint
    assert "http://" not in hint
