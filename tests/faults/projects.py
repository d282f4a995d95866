"""Sample projects written for a fault test: their test suite waits at a gate the test opens."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Final

from spruce.events import Event, WorkflowEvent, decode_event
from spruce.store import open_store, sqlite_path

BEFORE: Final = 40  # tests that pass before the gate
AFTER: Final = 300  # tests that pass once it is open
_TESTS: Final = f"""
import os
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize("n", range({BEFORE}))
def test_before(n: int) -> None:
    assert n >= 0


def test_waits_at_the_gate() -> None:
    gate = Path(os.environ["FAULT_GATE"])
    deadline = time.monotonic() + 600  # the tests touch the gate in any case
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gate.exists()


@pytest.mark.parametrize("n", range({AFTER}))
def test_after(n: int) -> None:
    assert n >= 0
"""
_PYPROJECT: Final = """
[project]
name = "gated"
version = "0.1.0"
requires-python = ">=3.11"

[tool.pytest.ini_options]
pythonpath = ["."]
"""


def gated_project(tmp_path: Path) -> tuple[Path, Path]:
    """(project, gate): the project's one slow test waits until the gate file exists."""
    project = tmp_path / "gated"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text(_PYPROJECT)
    (project / "tests" / "test_gated.py").write_text(_TESTS)
    return project, tmp_path / "gate"


async def stored_events(store_url: str, job_id: str) -> list[Event]:
    """Every stored event of a job, read by a handle of the test's own (a read-only one for
    SQLite, which must not try to write on a full disk)."""
    if store_url.startswith("sqlite://"):
        path = sqlite_path(store_url)
        if not path.exists():
            return []
        uri = f"file:{path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            try:
                rows = conn.execute(
                    "SELECT body FROM events WHERE job_id = ? ORDER BY seq", (job_id,)
                ).fetchall()
            except sqlite3.OperationalError as error:
                if "no such table" not in str(error):
                    raise
                return []  # the file exists, its schema not yet: nothing is stored
        return [decode_event(row[0]) for row in rows]
    log = open_store(store_url)
    await log.open()
    try:
        events: list[Event] = []
        while page := await log.read(job_id, after=events[-1].seq if events else 0):
            events.extend(page)
        return events
    finally:
        await log.aclose()


async def wait_for_stored(
    store_url: str, job_id: str, event: WorkflowEvent, *, timeout: float = 60
) -> list[Event]:
    """Poll the log until the job has stored an event of this kind; its events then."""
    deadline = time.monotonic() + timeout
    while True:
        events = await stored_events(store_url, job_id)
        if any(e.event is event for e in events):
            return events
        assert time.monotonic() < deadline, f"no {event} of job {job_id} in {timeout}s"
        await asyncio.sleep(0.1)


def expect_one_whole_job(events: list[Event]) -> None:
    """Seqs 1..N without a gap or a repeat, one opening event first and one end event last."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].event is WorkflowEvent.WORKFLOW_SESSION_INITIALIZING
    assert [e.seq for e in events if e.is_end] == [len(events)]
