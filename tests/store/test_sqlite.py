"""The SQLite log across processes: a live reader of another writer, and concurrent writers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from spruce.events import Event
from spruce.store import follow_job, open_store, sqlite_path

pytestmark = pytest.mark.anyio
WRITER = Path(__file__).with_name("publish_job.py")


def start_writer(
    url: str, job_id: str, count: int, pause_every: int = 0
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, job_id, str(count), str(pause_every)],
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[bytes]) -> str:
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return err.decode()


async def test_a_reader_follows_a_job_another_process_is_writing_once_each_in_order(
    sqlite_url: str,
) -> None:
    writer = start_writer(sqlite_url, "live", 400, pause_every=20)
    log = open_store(sqlite_url)
    await log.open()
    try:
        while await log.get_job("live") is None:
            assert writer.poll() is None or writer.returncode == 0
            await asyncio.sleep(0.01)
        received: list[Event] = []
        async with asyncio.timeout(60):
            async for event in follow_job(log, "live", poll=0.5):
                received.append(event)
        finish(writer)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        await log.aclose()
    assert [e.seq for e in received] == list(range(1, 401))
    assert received[-1].is_end


async def test_four_writer_processes_into_one_file_lose_nothing(sqlite_url: str) -> None:
    writers = [start_writer(sqlite_url, f"w{n}", 5000) for n in range(4)]
    errors = [finish(proc) for proc in writers]
    assert not any("locked" in err for err in errors), errors
    log = open_store(sqlite_url)
    await log.open()
    try:
        for n in range(4):
            seqs: list[int] = []
            while batch := await log.read(f"w{n}", after=seqs[-1] if seqs else 0):
                seqs += [e.seq for e in batch]
            assert seqs == list(range(1, 5001))
            job = await log.get_job(f"w{n}")
            assert job is not None and job.status == "passed"
        firehose = await log.read_all(limit=30_000)
        assert len(firehose) == 20_000
    finally:
        await log.aclose()


def test_store_urls_with_two_three_or_four_slashes_name_the_same_absolute_file() -> None:
    assert sqlite_path("sqlite:///tmp/x.db") == Path("/tmp/x.db")
    assert sqlite_path("sqlite:////tmp/x.db") == Path("/tmp/x.db")
    assert sqlite_path("sqlite://rel/x.db") == Path.cwd() / "rel/x.db"


async def test_the_url_retention_applies_by_itself_when_a_job_ends(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'e.db'}?keep_jobs=2"
    for name in ("a", "b", "c"):
        finish(start_writer(url, name, 3))
    log = open_store(url)
    await log.open()
    try:
        assert [j.job_id for j in await log.list_jobs()] == ["c", "b"]
    finally:
        await log.aclose()
