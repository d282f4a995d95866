"""Heartbeats of the jobs a process runs: a counter per job in the log, moved while it runs.

Other hosts judge a runner by these (see `spruce.orphans.LivenessJudge`): only whether the value
moves matters, never what time it is anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from spruce.store.base import EventLog

_log: Final = logging.getLogger("spruce.heartbeat")
HEARTBEAT_EVERY: Final = 5.0  # seconds between two heartbeats of a running job


class JobHeartbeats:
    """The counters of the jobs this process opened, until their end event is stored."""

    def __init__(self, log: EventLog, *, every: float = HEARTBEAT_EVERY) -> None:
        self.log = log
        self.every = every
        self._counters: dict[str, int] = {}
        self._ended: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Beat every `every` seconds until `aclose`."""
        if self._task is None:
            self._task = asyncio.create_task(self._keep_beating(), name="spruce-heartbeat")

    async def aclose(self) -> None:
        """Stop beating; forget the heartbeats of the jobs whose end is stored."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.beat(forget_only=True)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._counters

    async def begin(self, job_id: str) -> None:
        """Beat for a job from now on; the first beat goes before its opening event."""
        self._counters.setdefault(job_id, 0)
        await self.beat()

    def ended(self, job_id: str) -> None:
        """The job's end event is stored: its heartbeat can go."""
        if job_id in self._counters:
            self._ended.add(job_id)

    def abandon(self, job_id: str) -> None:
        """Stop beating and leave the last value standing (its end never reached the log), so
        that a reaper ends the job there and `spruce import` replaces that end."""
        self._counters.pop(job_id, None)
        self._ended.discard(job_id)

    async def beat(self, *, forget_only: bool = False) -> None:
        """Move each running job's counter on; forget those of jobs that ended."""
        for job_id in list(self._counters):
            ended = job_id in self._ended
            if forget_only and not ended:
                continue
            value = None if ended else self._counters[job_id] + 1
            try:
                async with asyncio.timeout(max(self.every, 1.0)):
                    await self.log.beat(job_id, value)
            except Exception as exc:  # an outage: the next beat may get through
                _log.info("heartbeat of job %s not stored: %s", job_id, exc)
                continue
            if value is None:
                self.abandon(job_id)
            elif job_id in self._counters:
                self._counters[job_id] = value

    async def _keep_beating(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.beat()
