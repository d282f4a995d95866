"""Jobs whose runner died without an end event (kill -9, a crash) are ended on its behalf.

Every job names its runner (host and pid) in its opening event.  A running job whose runner is
on this host and no longer exists can never end by itself, so any spruce process that notices
appends the WORKFLOW_FAILED it would have sent; the log's seq check makes a second, racing
notice fail harmlessly.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, Final

from spruce.bus import WorkflowEventBus
from spruce.errors import StoreError
from spruce.events import WorkflowEvent
from spruce.store.base import EventLog, JobRecord
from spruce.workflow.process import process_exists

_log: Final = logging.getLogger("spruce.orphans")
ORPHAN_EXIT_CODE: Final = 1


def runner_identity() -> dict[str, Any]:
    """What the opening event records about the process that runs the job."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


async def runner_is_gone(log: EventLog, job: JobRecord) -> bool:
    """Whether a running job's runner was on this host and has exited."""
    if job.status != "running":
        return False
    first = await log.read(job.job_id, after=0, limit=1)
    runner = first[0].data.get("runner") if first else None
    if not isinstance(runner, dict) or runner.get("host") != socket.gethostname():
        return False  # another machine's runner: its liveness cannot be seen from here
    pid = runner.get("pid")
    return pid != os.getpid() and isinstance(pid, int) and pid > 0 and not process_exists(pid)


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
