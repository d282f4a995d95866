"""A writer process for cross-process tests: publishes one whole job into a store URL.

Usage: python publish_job.py STORE_URL JOB_ID COUNT [PAUSE_EVERY]
"""

from __future__ import annotations

import asyncio
import sys

from spruce.container import open_services
from spruce.events import WorkflowEvent


async def publish(url: str, job_id: str, count: int, pause_every: int) -> None:
    async with open_services(store_url=url) as services:
        bus = services.bus
        await bus.publish(
            WorkflowEvent.WORKFLOW_SESSION_INITIALIZING,
            job_id=job_id,
            data={"workflow": "standard_quality", "project": "/tmp/p"},
        )
        for i in range(2, count):
            await bus.publish(
                WorkflowEvent.HOOK_STARTED, job_id=job_id, step_id="fast_hooks/x", data={"i": i}
            )
            if pause_every and i % pause_every == 0:
                await bus.flush()
                await asyncio.sleep(0.005)
        await bus.publish(
            WorkflowEvent.WORKFLOW_COMPLETED, job_id=job_id, data={"status": "passed"}
        )
        await bus.flush(timeout=60)


if __name__ == "__main__":
    url, job, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    asyncio.run(publish(url, job, total, int(sys.argv[4]) if len(sys.argv) > 4 else 0))
