"""`spruce import` of Redis spill files into any store: skips what is there, refuses conflicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from spruce.events import encode_event
from tests.store.conftest import job_events, make_event


def _spruce(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spruce", *args],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        check=False,
    )


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_import_into_sqlite_adds_only_the_missing_tail(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'events.db'}"
    events = job_events("k3x9", 6)
    head = _write(tmp_path / "head.jsonl", [encode_event(e) for e in events[:2]])
    assert _spruce("import", str(head), "--store", url).returncode == 0
    whole = _write(tmp_path / "whole.jsonl", [encode_event(e) for e in events])
    result = _spruce("import", str(whole), "--store", url, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"jobs":1,"imported":4,"skipped":2}'
    listed = _spruce("events", "k3x9", "--json", "--store", url)
    assert [json.loads(line)["seq"] for line in listed.stdout.splitlines()] == [1, 2, 3, 4, 5, 6]


def test_import_refuses_an_event_that_differs_from_the_stored_one(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'events.db'}"
    stored = _write(tmp_path / "a.jsonl", [encode_event(e) for e in job_events("j", 3)])
    assert _spruce("import", str(stored), "--store", url).returncode == 0
    other = _write(tmp_path / "b.jsonl", [encode_event(make_event("j", 2, hook="other"))])
    result = _spruce("import", str(other), "--store", url)
    assert result.returncode == 2
    assert "job j: seq 2 is already stored with other content" in result.stderr


def test_import_names_the_line_that_is_not_an_event(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.jsonl", [encode_event(make_event("j", 1)), b'{"event": 1}'])
    result = _spruce("import", str(bad), "--store", "memory://")
    assert result.returncode == 2
    assert f"{bad}:2: not a valid spruce event" in result.stderr
