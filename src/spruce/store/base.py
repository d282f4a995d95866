"""The `EventLog` protocol every backend implements, and the follow loops built on it.

A log stores each job's events in seq order, keeps a jobs index derived from those events, and
offers one all-jobs stream (the firehose) addressed by an opaque string cursor.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final, Literal, Protocol

import msgspec

from spruce.errors import CursorReset, UnknownJobError, UsageError
from spruce.events import Event, WorkflowEvent

JobStatus = Literal["running", "passed", "failed", "error", "cancelled"]
_END_STATUS: Final[dict[WorkflowEvent, JobStatus]] = {
    WorkflowEvent.WORKFLOW_COMPLETED: "passed",
    WorkflowEvent.WORKFLOW_FAILED: "failed",
    WorkflowEvent.WORKFLOW_CANCELLED: "cancelled",
}
READ_LIMIT: Final = 1000
_log: Final = logging.getLogger("spruce.store")


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the jobs index, derived from the job's events."""

    job_id: str
    workflow: str | None = None
    project: str | None = None
    status: JobStatus = "running"
    started_at: float
    ended_at: float | None = None
    last_seq: int = 0
    first_seq: int = 1


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    """What `gc` keeps; None means no limit of that kind."""

    keep_days: float | None = 30.0
    keep_jobs: int | None = 1000
    max_events_per_job: int | None = None


class GcReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one `gc` pass removed."""

    jobs_removed: int = 0
    events_removed: int = 0


def end_status(event: Event) -> JobStatus | None:
    """The job status an end event settles on (an explicit data.status such as "error" wins)."""
    status = _END_STATUS.get(event.event)
    if status is None:
        return None
    declared = event.data.get("status")
    if declared in ("passed", "failed", "error", "cancelled"):
        return declared  # type: ignore[no-any-return]
    return status


REAPED_REASON: Final = "the spruce process running this job ended without finishing it"


def is_reaped_end(event: Event) -> bool:
    """Whether an end event was written by a reaper for a runner that seemed gone (`reaped`;
    older spruce versions said so only by the reason)."""
    if not event.is_end:
        return False
    return event.data.get("reaped") is True or event.data.get("reason") == REAPED_REASON


def job_fields_from(event: Event) -> tuple[str | None, str | None]:
    """The (workflow, project) an event announces, if it is a job's opening event."""
    workflow = event.data.get("workflow")
    project = event.data.get("project")
    return (
        workflow if isinstance(workflow, str) else None,
        project if isinstance(project, str) else None,
    )


class ChangeSignal:
    """A counter that moves when the log may hold new events; waiters sleep until it does."""

    def __init__(self) -> None:
        self.version = 0
        self._moved = asyncio.Event()

    def bump(self) -> None:
        """Wake every waiter; call on the event loop's thread."""
        self.version += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def wait(self, seen: int, timeout: float) -> None:
        """Return once the version differs from `seen`, or after `timeout` seconds."""
        if self.version != seen:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._moved.wait()
        except TimeoutError:
            return


class EventLog(Protocol):
    """The durable, ordered record of every event; backends are chosen by URL."""

    url: str

    @property
    def version(self) -> int:
        """A counter that moves whenever new events may be readable (from any process)."""
        ...

    async def open(self) -> None:
        """Connect and create the schema if needed."""

    async def aclose(self) -> None:
        """Release connections and background tasks."""

    async def append(self, events: Sequence[Event]) -> None:
        """Store events atomically, in order; seq must continue each job's sequence."""

    async def last_seq(self, job_id: str) -> int:
        """The highest seq stored for a job, 0 if it has none."""
        ...

    async def read(self, job_id: str, *, after: int = 0, limit: int = READ_LIMIT) -> list[Event]:
        """A job's events with seq > after, oldest first; CursorReset if retention removed some."""
        ...

    async def read_all(
        self, *, after: str | None = None, limit: int = READ_LIMIT
    ) -> list[tuple[str, Event]]:
        """Every job's events after a firehose cursor (None: from the start), with their cursors."""
        ...

    async def head(self) -> str:
        """The firehose cursor of the newest event ("0"-like when empty): tail from now."""
        ...

    async def get_job(self, job_id: str) -> JobRecord | None:
        """One row of the jobs index."""
        ...

    async def list_jobs(self, *, limit: int = 100) -> list[JobRecord]:
        """The newest jobs first."""
        ...

    async def wait(self, seen: int, timeout: float) -> None:
        """Sleep until `version` differs from `seen` or `timeout` passes."""

    async def gc(self, retention: Retention) -> GcReport:
        """Remove what the retention policy no longer keeps."""
        ...

    @property
    def spill_path(self) -> Path | None:
        """The file this log wrote events to that it could not store (None: it wrote none)."""
        ...

    async def beat(self, runner: str, value: int | None) -> None:
        """Record the heartbeat counter of the runner process `runner`; None forgets it.
        Heartbeats not renewed for a day may be dropped."""

    async def heartbeat(self, runner: str) -> int | None:
        """The runner's last heartbeat counter; None if it has none."""
        ...

    async def reopen(self, job_id: str, seq: int) -> None:
        """Remove the job's end event at `seq`, its last one, so that it runs again at seq - 1
        (for `spruce import`: a reaper's end event gives way to the runner's own events).
        SequenceConflictError if `seq` is not the job's last event or not an end event."""


RUNNER_MEMORY: Final = 86_400.0  # seconds a heartbeat that is not renewed is kept


async def follow_job(
    log: EventLog, job_id: str, *, after: int = 0, poll: float = 1.0
) -> AsyncIterator[Event]:
    """A job's events after `after`, then live ones, ending after its end event.

    Raises UnknownJobError if the job does not exist, CursorReset if `after` was removed.
    """
    if await log.get_job(job_id) is None:
        raise UnknownJobError(job_id)
    while True:
        seen = log.version
        events = await log.read(job_id, after=after)
        for event in events:
            yield event
            after = event.seq
            if event.is_end:
                return
        if not events:
            await log.wait(seen, poll)


async def tail_all(
    log: EventLog, *, after: str | None = None, poll: float = 0.5, retry: float = 0.5
) -> AsyncIterator[tuple[str, Event]]:
    """`follow_all` that never gives up: a removed cursor resumes at the earliest stored event
    (logged, not silent), a failing store is retried after `retry` seconds."""
    while True:
        try:
            async for cursor, event in follow_all(log, after=after, poll=poll):
                after = cursor
                yield cursor, event
        except CursorReset as reset:
            _log.warning("the event log removed events past this reader: %s", reset)
            after = str(reset.resume_after)
        except Exception as exc:  # a lost store connection: resume from the last cursor
            _log.warning("following the event log failed (%s); retrying", exc)
            await asyncio.sleep(retry)


class AutoRetention:
    """When a log applies its URL's retention by itself: after a job ends, once a minute."""

    INTERVAL: Final = 60.0

    def __init__(self) -> None:
        self._last = -self.INTERVAL

    def due(self, events: Sequence[Event]) -> bool:
        """Whether this batch (it holds an end event) should trigger a gc pass now."""
        if not any(event.is_end for event in events):
            return False
        now = time.monotonic()
        if now - self._last < self.INTERVAL:
            return False
        self._last = now
        return True


async def follow_all(
    log: EventLog, *, after: str | None = None, poll: float = 1.0
) -> AsyncIterator[tuple[str, Event]]:
    """Every job's events after a firehose cursor, then live ones, forever."""
    while True:
        seen = log.version
        page = await log.read_all(after=after)
        for cursor, event in page:
            yield cursor, event
            after = cursor
        if not page:
            await log.wait(seen, poll)


def keep_days_cutoff(retention: Retention, now: float) -> float:
    """The start time before which finished jobs are removed (-inf when there is no day limit)."""
    if retention.keep_days is None:
        return -math.inf
    return now - retention.keep_days * 86400.0


def parse_int_cursor(cursor: str | None) -> int:
    """A numeric firehose cursor; None or "" is the start.  Anything else is a UsageError."""
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 19:
        raise UsageError(f"invalid cursor {cursor!r}: expected a non-negative integer")
    return int(cursor)
