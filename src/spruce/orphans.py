"""Jobs whose runner died without an end event (kill -9, a crash, a lost machine) are ended on
its behalf.

Every job names its runner (host, pid and a token of the process) in its opening event, and a
process that runs jobs keeps a heartbeat in the log. A running job can never end by itself when
its runner is on this host and no longer exists, or is on another host and its heartbeat ran out
(plus a grace for clocks that disagree); any spruce process that notices appends the
WORKFLOW_FAILED the runner would have sent. The log's seq check makes a second, racing notice
fail harmlessly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
from typing import Any, Final

from spruce.bus import WorkflowEventBus
from spruce.errors import StoreError
from spruce.events import WorkflowEvent
from spruce.store.base import EventLog, JobRecord

_log: Final = logging.getLogger("spruce.orphans")
ORPHAN_EXIT_CODE: Final = 1


HEARTBEAT_EVERY: Final = 10.0  # seconds between two heartbeats of a process that runs jobs
HEARTBEAT_LASTS: Final = 30.0  # how long one heartbeat vouches for its process
CLOCK_GRACE: Final = 30.0  # how far two hosts' clocks may disagree before a runner is judged


@functools.cache
def _process_token() -> str:
    return secrets.token_hex(6)


def runner_identity() -> dict[str, Any]:
    """What the opening event records about the process that runs the job."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "id": _process_token()}


def runner_key(runner: dict[str, Any]) -> str | None:
    """The name of a runner's heartbeat; None for a runner that recorded no token."""
    host, pid, token = runner.get("host"), runner.get("pid"), runner.get("id")
    if not (isinstance(host, str) and isinstance(pid, int) and isinstance(token, str)):
        return None
    return f"{host}:{pid}:{token}"


async def keep_alive(log: EventLog, *, every: float = HEARTBEAT_EVERY) -> None:
    """Beat for this process until cancelled, then forget it (it runs no job any more)."""
    key = runner_key(runner_identity())
    assert key is not None
    try:
        while True:
            try:
                await log.beat(key, time.time() + HEARTBEAT_LASTS)
            except StoreError as exc:  # an outage: the next beat may get through
                _log.info("heartbeat not stored: %s", exc)
            await asyncio.sleep(every)
    finally:
        with contextlib.suppress(StoreError, TimeoutError):  # the cancel was delivered above
            async with asyncio.timeout(5):
                await log.beat(key, None)


async def runner_is_gone(log: EventLog, job: JobRecord) -> bool:
    """Whether a running job's runner has exited (this host) or fell silent (another host)."""
    if job.status != "running":
        return False
    first = await log.read(job.job_id, after=0, limit=1)
    runner = first[0].data.get("runner") if first else None
    if not isinstance(runner, dict):
        return False
    if runner.get("host") != socket.gethostname():
        return await _heartbeat_ran_out(log, runner)
    pid = runner.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by someone else
    return False


async def _heartbeat_ran_out(log: EventLog, runner: dict[str, Any]) -> bool:
    """Another machine's runner is judged by its heartbeat; one that never sent any (an older
    spruce) cannot be judged at all."""
    key = runner_key(runner)
    if key is None:
        return False
    until = await log.alive_until(key)
    return until is not None and until + CLOCK_GRACE < time.time()


async def end_orphaned_jobs(bus: WorkflowEventBus, *, limit: int = 200) -> list[str]:
    """End every running job of the newest `limit` whose runner died; returns their ids."""
    ended: list[str] = []
    for job in await bus.log.list_jobs(limit=limit):
        if await runner_is_gone(bus.log, job) and await end_orphan(bus, job):
            ended.append(job.job_id)
    return ended


async def end_orphan(bus: WorkflowEventBus, job: JobRecord) -> bool:
    """Append the end event a dead runner never sent; False if another process was first."""
    reason = "the spruce process running this job ended without finishing it"
    data = {
        "workflow": job.workflow,
        "status": "error",
        "duration": round(max(0.0, time.time() - job.started_at), 4),
        "reason": reason,
        "exit_code": ORPHAN_EXIT_CODE,
    }
    try:
        await bus.publish(WorkflowEvent.WORKFLOW_FAILED, job_id=job.job_id, data=data)
        await bus.flush()
    except StoreError as exc:
        _log.info("job %s was ended by another process first: %s", job.job_id, exc)
        return False
    _log.warning("job %s: %s", job.job_id, reason)
    return True
