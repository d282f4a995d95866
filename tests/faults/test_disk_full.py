"""Disk full under the SQLite event log, mid-run: nothing is lost, nothing shown unstored.

The disk is a real tmpfs mounted for the test (as root), filled with a file and freed again; where
mount is not permitted, SQLite's writes answer SQLITE_FULL while a flag file exists instead.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from spruce.bus import WorkflowEventBus
from spruce.events import Event, WorkflowEvent
from spruce.store.sqlite import SQLiteEventLog
from tests.faults.disk import Disk, small_disk
from tests.faults.full_disk_shim import patch_sqlite
from tests.faults.projects import (
    AFTER,
    BEFORE,
    expect_one_whole_job,
    gated_project,
    stored_events,
    wait_for_stored,
)

pytestmark = pytest.mark.anyio
JOB = "disk-full"


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    with small_disk(tmp_path) as disk:
        if not disk.mounted:
            patch_sqlite(disk.flag, monkeypatch.setattr)
        yield disk


async def _publish(bus: WorkflowEventBus, first: int, count: int) -> None:
    for index in range(first, first + count):
        await bus.publish(
            WorkflowEvent.TEST_CASE_COMPLETED,
            job_id=JOB,
            step_id="tests",
            # Big enough that every batch needs pages the full disk cannot give.
            data={
                "nodeid": f"tests/test_x.py::test_{index}",
                "outcome": "passed",
                "pad": "x" * 2000,
            },
        )


@pytest.mark.timeout(60)
async def test_events_wait_unseen_while_the_disk_is_full_and_are_stored_once_when_it_frees(
    disk: Disk,
) -> None:
    log = SQLiteEventLog(disk.root / "events.db")
    await log.open()
    bus = WorkflowEventBus(log)
    await bus.start()
    seen: list[Event] = []
    bus.subscribe(None, seen.append, name="seen")
    try:
        await bus.publish(WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, job_id=JOB, data={})
        await _publish(bus, 0, 10)
        await bus.flush()
        disk.fill()
        await _publish(bus, 10, 150)
        await asyncio.sleep(2.0)  # longer than the three quick retries that used to give up
        stored_while_full = len(await log.read(JOB, limit=10_000))
        seen_while_full = len(seen)
        disk.free()
        await _publish(bus, 160, 20)
        await bus.publish(WorkflowEvent.WORKFLOW_COMPLETED, job_id=JOB, data={"status": "passed"})
        await bus.flush(timeout=40)
        for _ in range(200):  # the subscriber's thread catches up
            if len(seen) == 182:
                break
            await asyncio.sleep(0.02)
    finally:
        await bus.aclose()
        stored = await log.read(JOB, limit=10_000)
        await log.aclose()
    assert stored_while_full == 11, "the full disk took no event"
    assert seen_while_full == 11, "a subscriber saw events that were not stored"
    expect_one_whole_job(stored)
    assert len(stored) == 182
    assert [e.data.get("nodeid") for e in stored[1:-1]] == [
        f"tests/test_x.py::test_{i}" for i in range(180)
    ]
    assert seen == stored


def _start_run(
    disk: Disk, project: Path, gate: Path, tmp_path: Path, window: float
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "FAULT_GATE": str(gate),
        "SPRUCE_RETRY_WINDOW": str(window),
        "XDG_STATE_HOME": str(tmp_path / "state"),  # where the spill file goes
    }
    args = ["run", str(project), "--workflow", "tests", "--no-cache", "--store", disk.store_url]
    return subprocess.Popen(
        [*disk.spruce(*args, "--job-id", JOB)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


async def _fill_mid_run(disk: Disk, gate: Path, run: subprocess.Popen[str]) -> int:
    """Once the job stored its first test results, fill the disk and let the rest run."""
    await wait_for_stored(disk.store_url, JOB, WorkflowEvent.TEST_CASE_COMPLETED)
    assert run.poll() is None
    disk.fill()
    await asyncio.sleep(0.5)  # a batch already under way may still find a free page
    stored = len(await stored_events(disk.store_url, JOB))
    gate.touch()
    return stored


def _reap(run: subprocess.Popen[str], gate: Path | None = None) -> None:
    if gate is not None:
        gate.touch()  # the suite's waiting test returns, whatever became of its runner
    if run.poll() is None:
        os.killpg(run.pid, 9)
    run.communicate()


def _finish(run: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    try:
        _, stderr = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _reap(run)
        raise
    return run.returncode, stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_space_back_within_the_retry_window_stores_the_whole_run(
    disk: Disk, tmp_path: Path
) -> None:
    project, gate = gated_project(tmp_path)
    run = _start_run(disk, project, gate, tmp_path, window=60)
    try:
        before = await _fill_mid_run(disk, gate, run)
        await asyncio.sleep(3.0)  # the suite finishes; its results wait for space
        during = len(await stored_events(disk.store_url, JOB))
        assert run.poll() is None, "the run did not wait for the log"
        disk.free()
        code, stderr = await asyncio.to_thread(_finish, run, 60)
    finally:
        _reap(run, gate)
    assert during == before, "the full disk took events"
    assert code == 0, stderr
    events = await stored_events(disk.store_url, JOB)
    expect_one_whole_job(events)
    cases = [e for e in events if e.event is WorkflowEvent.TEST_CASE_COMPLETED]
    assert len(cases) == BEFORE + 1 + AFTER
    assert len({e.data["nodeid"] for e in cases}) == len(cases)
    assert events[-1].event is WorkflowEvent.WORKFLOW_COMPLETED


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_past_the_window_the_run_names_the_full_disk_and_the_spill_file_imports(
    disk: Disk, tmp_path: Path
) -> None:
    project, gate = gated_project(tmp_path)
    run = _start_run(disk, project, gate, tmp_path, window=3)
    try:
        await _fill_mid_run(disk, gate, run)
        code, stderr = await asyncio.to_thread(_finish, run, 60)
    finally:
        _reap(run, gate)
    assert code == 2, stderr
    assert "event log unavailable: disk full" in stderr
    assert "cannot rollback" not in stderr and "Traceback" not in stderr
    found = re.search(r"kept in (\S+\.jsonl)", stderr)
    assert found is not None, stderr
    spill = Path(found.group(1))
    assert spill.is_file()
    disk.free()
    loaded = subprocess.run(
        disk.spruce("import", str(spill), "--store", disk.store_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    events = await stored_events(disk.store_url, JOB)
    expect_one_whole_job(events)
    log = SQLiteEventLog(disk.root / "events.db")
    await log.open()
    try:
        job = await log.get_job(JOB)
    finally:
        await log.aclose()
    assert job is not None and job.status != "running"
