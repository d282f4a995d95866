"""`spruce import` of hostile or broken spill files: one documented error, and all or nothing.

Also: the runner's own events, imported later, take the place of the end event a reaper wrote
when the runner seemed gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spruce.errors import EventDecodeError
from spruce.events import Event, WorkflowEvent, decode_event, encode_event
from spruce.store import open_store
from spruce.store.spill import read_spill
from tests.store.conftest import make_event
from tests.store.redis_support import isolated_store_url

pytestmark = pytest.mark.anyio
DEEP = 100_000


def _spruce_import(path: Path, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spruce", "import", str(path), "--store", store],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )


def _write(path: Path, events: list[Event], *extra: bytes) -> Path:
    path.write_bytes(b"".join(encode_event(e) + b"\n" for e in events) + b"".join(extra))
    return path


def _nested_line(depth: int) -> bytes:
    event = make_event("deep", 1)
    body = encode_event(event)
    return body[:-1] + b', "data": {"x": ' + b"[" * depth + b"]" * depth + b"}}\n"


def _job(job_id: str, count: int) -> list[Event]:
    opening = make_event(job_id, 1, WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, workflow="fast")
    return [opening, *(make_event(job_id, seq) for seq in range(2, count + 1))]


async def _stored(store: str, job_id: str) -> tuple[str | None, list[Event]]:
    log = open_store(store)
    await log.open()
    try:
        record = await log.get_job(job_id)
        events: list[Event] = []
        while page := await log.read(job_id, after=events[-1].seq if events else 0):
            events.extend(page)
        return (record.status if record else None), events
    finally:
        await log.aclose()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'events.db'}"
        return
    with isolated_store_url() as url:
        yield url


def test_every_decode_path_answers_deep_nesting_with_the_one_decode_error(tmp_path: Path) -> None:
    line = _nested_line(DEEP)
    with pytest.raises(EventDecodeError, match="nested too deeply"):
        decode_event(line)
    with pytest.raises(EventDecodeError, match="nested too deeply"):
        decode_event(line.decode())
    spill = _write(tmp_path / "deep.jsonl", [], line)
    with pytest.raises(Exception, match=f"{spill}:1: .*nested too deeply") as raised:
        list(read_spill(spill))
    assert not isinstance(raised.value, RecursionError)


@pytest.mark.timeout(60)
def test_importing_a_line_nested_100_000_deep_is_a_clear_error(tmp_path: Path) -> None:
    spill = _write(tmp_path / "deep.jsonl", _job("deep-ok", 3), _nested_line(DEEP))
    store = f"sqlite://{tmp_path / 'events.db'}"
    result = _spruce_import(spill, store)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert f"{spill}:4:" in result.stderr and "nested too deeply" in result.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad", ["gap", "not json"])
async def test_a_bad_line_after_1000_good_ones_imports_nothing(
    tmp_path: Path, store: str, bad: str
) -> None:
    good = _job("partial", 1000)
    line = encode_event(make_event("partial", 1002)) if bad == "gap" else b'{"event": '
    spill = _write(tmp_path / "partial.jsonl", good, line + b"\n")
    result = _spruce_import(spill, store)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "nothing was imported" in result.stderr or f"{spill}:1001:" in result.stderr
    status, events = await _stored(store, "partial")
    assert (status, events) == (None, []), "an import is all or nothing"
    again = _write(tmp_path / "good.jsonl", good)
    assert _spruce_import(again, store).returncode == 0
    status, events = await _stored(store, "partial")
    assert status == "running" and [e.seq for e in events] == list(range(1, 1001))


@pytest.mark.timeout(60)
async def test_the_runner_s_real_events_replace_the_end_a_reaper_wrote(
    tmp_path: Path, store: str
) -> None:
    from spruce.container import open_services
    from spruce.orphans import end_orphaned_jobs
    from tests.test_orphans import dead_pid

    runner = {"host": os.uname().nodename, "pid": dead_pid()}
    stored_part = [
        make_event("reaped", 1, WorkflowEvent.WORKFLOW_SESSION_INITIALIZING, runner=runner),
        *(make_event("reaped", seq) for seq in range(2, 6)),
    ]
    spilled = [
        *(make_event("reaped", seq, WorkflowEvent.TEST_CASE_COMPLETED) for seq in range(6, 9)),
        make_event("reaped", 9, WorkflowEvent.WORKFLOW_COMPLETED, status="passed"),
    ]
    async with open_services(store_url=store) as services:
        await services.log.append(stored_part)
        assert await end_orphaned_jobs(services.bus) == ["reaped"]
    status, events = await _stored(store, "reaped")
    assert status == "error" and events[-1].seq == 6
    assert "ended without finishing" in events[-1].data["reason"]

    spill = _write(tmp_path / "runner.jsonl", stored_part[3:] + spilled)
    result = _spruce_import(spill, store)
    assert result.returncode == 0, result.stderr
    status, events = await _stored(store, "reaped")
    assert status == "passed"
    assert events == stored_part + spilled
    again = _spruce_import(spill, store)
    assert again.returncode == 0 and "imported 0 events" in again.stdout


def test_a_job_id_with_a_trailing_newline_is_refused_when_decoded() -> None:
    line = encode_event(make_event("abc", 1)).replace(b'"abc"', b'"abc\\n"')
    assert b'"abc\\n"' in line
    with pytest.raises(EventDecodeError):
        decode_event(line)
