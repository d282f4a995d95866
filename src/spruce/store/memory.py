"""`memory://`: the event log kept in this process, for tests and `--ephemeral` runs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from spruce.errors import CursorReset, SequenceConflictError
from spruce.events import Event
from spruce.store.base import (
    READ_LIMIT,
    ChangeSignal,
    GcReport,
    JobRecord,
    Retention,
    end_status,
    job_fields_from,
    keep_days_cutoff,
    parse_int_cursor,
)


class _Job:
    __slots__ = ("events", "record")

    def __init__(self, record: JobRecord) -> None:
        self.record = record
        self.events: list[Event] = []


class MemoryEventLog:
    """Events and the jobs index in plain dicts and lists; nothing survives the process."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._jobs: dict[str, _Job] = {}
        self._all: list[tuple[int, Event]] = []
        self._next_cursor = 1
        self._floor = 0  # every firehose cursor <= floor may have been removed
        self._heartbeats: dict[str, int] = {}
        self._signal = ChangeSignal()

    @property
    def version(self) -> int:
        return self._signal.version

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def append(self, events: Sequence[Event]) -> None:
        staged: dict[str, int] = {}
        for event in events:
            last = staged.get(event.job_id)
            if last is None:
                job = self._jobs.get(event.job_id)
                last = job.record.last_seq if job else 0
            if event.seq != last + 1:
                raise SequenceConflictError(
                    f"job {event.job_id}: seq {event.seq} does not follow {last}"
                )
            staged[event.job_id] = event.seq
        for event in events:
            self._store(event)
        if events:
            self._signal.bump()

    def _store(self, event: Event) -> None:
        job = self._jobs.get(event.job_id)
        if job is None:
            workflow, project = job_fields_from(event)
            record = JobRecord(
                job_id=event.job_id,
                workflow=workflow,
                project=project,
                started_at=event.timestamp,
            )
            job = self._jobs[event.job_id] = _Job(record)
        job.events.append(event)
        status = end_status(event)
        changes: dict[str, object] = {"last_seq": event.seq}
        if status is not None:
            changes.update(status=status, ended_at=event.timestamp)
        job.record = msgspec.structs.replace(job.record, **changes)
        self._all.append((self._next_cursor, event))
        self._next_cursor += 1

    async def last_seq(self, job_id: str) -> int:
        job = self._jobs.get(job_id)
        return job.record.last_seq if job else 0

    async def read(self, job_id: str, *, after: int = 0, limit: int = READ_LIMIT) -> list[Event]:
        job = self._jobs.get(job_id)
        if job is None:
            return []
        first = job.record.first_seq
        if after < first - 1:
            raise CursorReset(after, first, first - 1)
        start = after - first + 1
        return job.events[start : start + limit]

    async def read_all(
        self, *, after: str | None = None, limit: int = READ_LIMIT
    ) -> list[tuple[str, Event]]:
        position = parse_int_cursor(after)
        if position < self._floor:
            raise CursorReset(after or "0", str(self._floor + 1), str(self._floor))
        # Cursors are dense and sorted: find the start by offset from the first kept entry.
        if not self._all:
            return []
        start = max(0, position - self._all[0][0] + 1)
        return [(str(cursor), event) for cursor, event in self._all[start : start + limit]]

    async def head(self) -> str:
        return str(self._next_cursor - 1)

    async def get_job(self, job_id: str) -> JobRecord | None:
        job = self._jobs.get(job_id)
        return job.record if job else None

    async def list_jobs(self, *, limit: int = 100) -> list[JobRecord]:
        records = sorted(
            (job.record for job in self._jobs.values()), key=lambda r: r.started_at, reverse=True
        )
        return records[:limit]

    async def wait(self, seen: int, timeout: float) -> None:
        await self._signal.wait(seen, timeout)

    async def gc(self, retention: Retention) -> GcReport:
        cutoff = keep_days_cutoff(retention, time.time())
        newest_first = sorted(self._jobs.values(), key=lambda j: j.record.started_at, reverse=True)
        removed_jobs = 0
        removed_events = 0
        for rank, job in enumerate(newest_first):
            too_many = retention.keep_jobs is not None and rank >= retention.keep_jobs
            if too_many or job.record.started_at < cutoff:
                del self._jobs[job.record.job_id]
                removed_jobs += 1
                removed_events += len(job.events)
            elif retention.max_events_per_job is not None:
                removed_events += self._trim(job, retention.max_events_per_job)
        if removed_events:
            kept = {id(e) for job in self._jobs.values() for e in job.events}
            dropped = [c for c, e in self._all if id(e) not in kept]
            self._floor = max(self._floor, *dropped)
            self._all = [(c, e) for c, e in self._all if id(e) in kept]
        return GcReport(jobs_removed=removed_jobs, events_removed=removed_events)

    @property
    def spill_path(self) -> Path | None:
        return None

    async def beat(self, runner: str, value: int | None) -> None:
        if value is None:
            self._heartbeats.pop(runner, None)
        else:
            self._heartbeats[runner] = value

    async def heartbeat(self, runner: str) -> int | None:
        return self._heartbeats.get(runner)

    async def reopen(self, job_id: str, seq: int) -> None:
        job = self._jobs.get(job_id)
        last = job.events[-1] if job and job.events else None
        if job is None or last is None or last.seq != seq or not last.is_end:
            raise SequenceConflictError(f"job {job_id}: seq {seq} is not its stored end event")
        # The firehose keeps its entry: its cursors stay dense, and followers saw it already.
        job.events.pop()
        job.record = msgspec.structs.replace(
            job.record, status="running", ended_at=None, last_seq=seq - 1
        )
        self._signal.bump()

    def _trim(self, job: _Job, keep: int) -> int:
        excess = len(job.events) - keep
        if excess <= 0:
            return 0
        del job.events[:excess]
        job.record = msgspec.structs.replace(job.record, first_seq=job.events[0].seq)
        return excess
