"""Many runners and many servers on one Redis: every server streams every job whole and in order."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.conftest import logged_events, start_serve, wait_for_job, watch
from tests.store.redis_support import isolated_store_url

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.slow]
PROJECTS = Path(__file__).parent.parent / "resources" / "projects"


@pytest.mark.timeout(240)
async def test_two_servers_stream_both_jobs_of_two_runners_completely_and_in_order(
    tmp_path: Path, serve_processes: list[subprocess.Popen[str]]
) -> None:
    with isolated_store_url() as store:
        servers = [start_serve(store), start_serve(store)]
        serve_processes.extend(server.proc for server in servers)
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
        runs = {}
        for job_id, sample in (("farm-clean", "clean"), ("farm-lint", "lint")):
            project = shutil.copytree(PROJECTS / sample, tmp_path / sample)
            runs[job_id] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "spruce",
                    "run",
                    str(project),
                    "--store",
                    store,
                    "--job-id",
                    job_id,
                    "--no-cache",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,
            )
            serve_processes.append(runs[job_id])
        for job_id in runs:
            await wait_for_job(servers[0].http, job_id)
        async with asyncio.timeout(180):
            readings = await asyncio.gather(
                *(
                    watch(f"{server.ws}/ws/progress/{job_id}", timeout=180)
                    for server in servers
                    for job_id in runs
                )
            )
        codes = {job_id: await asyncio.to_thread(proc.wait, 60) for job_id, proc in runs.items()}
        assert codes == {"farm-clean": 0, "farm-lint": 1}
        expected = {job_id: await logged_events(servers[1].http, job_id) for job_id in runs}
        for n, reading in enumerate(readings):
            job_id = list(runs)[n % 2]
            assert reading.messages == expected[job_id], f"server {n // 2}, job {job_id}"
            assert reading.seqs == list(range(1, len(expected[job_id]) + 1))
            assert reading.close_code == 1000
