"""Jobs whose runner died without an end event (kill -9, a crash, a lost machine) are ended on
its behalf.

Every job names its runner (host and pid) in its opening event, and the bus that publishes a job
keeps a heartbeat counter for it in the log while it runs.  A runner on this host is gone when
its process no longer exists.  A runner on another host is judged only by what this process saw
itself: the same heartbeat value in every successful read across a whole window.  No clock of
another host is compared with ours, and a failed read (the log is unreachable, so the runner's
beats may be failing too) or a gap between two looks starts the window again.  Any spruce process
that finds a job's runner gone appends the WORKFLOW_FAILED it would have sent (marked `reaped`, so
that `spruce import` of the runner's own events can replace it); the log's seq check makes a
second, racing notice fail harmlessly.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec

from spruce.bus import WorkflowEventBus
from spruce.errors import StoreError
from spruce.events import Event, WorkflowEvent
from spruce.store.base import REAPED_REASON, EventLog, JobRecord

_log: Final = logging.getLogger("spruce.orphans")
ORPHAN_EXIT_CODE: Final = 1
LIVENESS_WINDOW: Final = 30.0  # seconds a heartbeat must stand still before its runner is gone


def runner_identity() -> dict[str, Any]:
    """What the opening event records about the process that runs the job."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


class _Seen(msgspec.Struct):
    value: int
    since: float  # when this process first read `value` (its own monotonic clock)
    last: float  # when it last read it


class LivenessJudge:
    """Decides whether running jobs' runners are gone, from this process's own observations."""

    def __init__(
        self,
        log: EventLog,
        *,
        window: float = LIVENESS_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.window = window
        self._clock = clock
        self._seen: dict[str, _Seen] = {}
        self._last_look: float | None = None

    async def gone(self, jobs: Sequence[JobRecord]) -> list[JobRecord]:
        """The running jobs among `jobs` whose runner is gone.

        Raises StoreError if the log could not be read; every observation is then forgotten.
        """
        now = self._clock()
        if self._last_look is not None and now - self._last_look > self.window / 2:
            self._seen.clear()  # this process did not look for a while: it saw nothing then
        try:
            verdicts = [job for job in jobs if await self._is_gone(job, now)]
        except StoreError:
            self._seen.clear()
            self._last_look = None
            raise
        self._last_look = now
        for job_id in [j for j, seen in self._seen.items() if now - seen.last > 2 * self.window]:
            del self._seen[job_id]
        return verdicts

    async def is_gone(self, job: JobRecord) -> bool:
        """Whether one running job's runner is gone (see `gone`)."""
        return bool(await self.gone([job]))

    async def _is_gone(self, job: JobRecord, now: float) -> bool:
        if job.status != "running":
            return False
        first = await self.log.read(job.job_id, after=0, limit=1)
        runner = first[0].data.get("runner") if first else None
        if not isinstance(runner, dict):
            return False
        if runner.get("host") == socket.gethostname():
            return _process_is_gone(runner.get("pid"))
        value = await self.log.heartbeat(job.job_id)
        if value is None:
            return False  # it never beat (an older spruce): it cannot be judged from here
        seen = self._seen.get(job.job_id)
        if seen is None or seen.value != value:
            self._seen[job.job_id] = _Seen(value=value, since=now, last=now)
            return False
        seen.last = now
        return now - seen.since >= self.window


def _process_is_gone(pid: object) -> bool:
    """Whether a process of this host has exited."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by someone else
    return False


async def end_orphaned_jobs(
    bus: WorkflowEventBus, *, judge: LivenessJudge | None = None, limit: int = 200
) -> list[str]:
    """End every running job of the newest `limit` whose runner is gone; returns their ids.

    Without a `judge` that has watched before, only this host's dead runners are found.
    """
    judge = judge or LivenessJudge(bus.log)
    running = [job for job in await bus.log.list_jobs(limit=limit) if job.status == "running"]
    ended: list[str] = []
    for job in await judge.gone(running):
        if await end_orphan(bus, job):
            ended.append(job.job_id)
    return ended


async def end_orphan(bus: WorkflowEventBus, job: JobRecord) -> bool:
    """Append the end event a dead runner never sent; False if another process was first."""
    data = {
        "workflow": job.workflow,
        "status": "error",
        "duration": round(max(0.0, time.time() - job.started_at), 4),
        "reason": REAPED_REASON,
        "exit_code": ORPHAN_EXIT_CODE,
        "reaped": True,
    }
    try:
        # Straight to the log, not through the bus: a refused end event is not retried or
        # spilled (the next look tries again), and every follower, this process's too, reads
        # it from the log like any other process's event.
        event = Event(
            event=WorkflowEvent.WORKFLOW_FAILED,
            job_id=job.job_id,
            seq=await bus.log.last_seq(job.job_id) + 1,
            timestamp=time.time(),
            data=data,
        )
        await bus.log.append([event])
    except StoreError as exc:
        _log.info("job %s was not ended here: %s", job.job_id, exc)
        return False
    _log.warning("job %s: %s", job.job_id, REAPED_REASON)
    return True
