"""Backends for the event-log contract suite: each test runs against every one of them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from spruce.events import Event, WorkflowEvent
from spruce.store import EventLog, open_store

BACKENDS = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)]

# Opens another handle on the same log, as a second process would (None: the same object).
Reopen = Callable[[], Awaitable[EventLog]]


def make_event(
    job_id: str,
    seq: int,
    kind: WorkflowEvent = WorkflowEvent.HOOK_STARTED,
    **data: object,
) -> Event:
    """An event with the given coordinates and data."""
    return Event(
        event=kind,
        job_id=job_id,
        seq=seq,
        step_id="fast_hooks/x",
        timestamp=time.time(),
        data=dict(data),
    )


def job_events(job_id: str, count: int, *, end: bool = True) -> list[Event]:
    """A whole job: an opening event, hooks, and (optionally) a WORKFLOW_COMPLETED end."""
    events = [
        make_event(
            job_id,
            1,
            WorkflowEvent.WORKFLOW_SESSION_INITIALIZING,
            workflow="standard_quality",
            project="/tmp/p",
        )
    ]
    events += [make_event(job_id, seq) for seq in range(2, count)]
    last = WorkflowEvent.WORKFLOW_COMPLETED if end else WorkflowEvent.HOOK_STARTED
    events.append(make_event(job_id, count, last, status="passed"))
    return events


def _url_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        # Automatic retention off: the contract tests call gc themselves.
        return f"sqlite://{tmp_path / 'events.db'}?keep_days=none&keep_jobs=none"
    if backend == "redis":  # a namespace of its own on the shared server, deleted afterwards
        from tests.store.redis_support import contract_url

        return contract_url(request) + "?keep_days=none&keep_jobs=none"
    raise AssertionError(backend)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
async def log_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The store URL of a fresh, empty log of the backend under test."""
    return _url_for(backend, tmp_path, request)


@pytest.fixture
async def log(log_url: str) -> AsyncIterator[EventLog]:
    """An open, empty log of the backend under test."""
    store = open_store(log_url)
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def reopen(log: EventLog, log_url: str) -> AsyncIterator[Reopen]:
    """Open a second handle on the same log (memory: the same object, it has no other)."""
    handles: list[EventLog] = []

    async def _open() -> EventLog:
        if log_url.startswith("memory"):
            return log
        other = open_store(log_url)
        await other.open()
        handles.append(other)
        return other

    yield _open
    for handle in handles:
        await handle.aclose()
