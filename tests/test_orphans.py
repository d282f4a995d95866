"""Jobs whose runner died without an end event are ended on its behalf, once."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spruce.container import open_services
from spruce.errors import StoreError
from spruce.events import WorkflowEvent
from spruce.orphans import LivenessJudge, end_orphaned_jobs, runner_identity
from spruce.store import EventLog
from spruce.store.memory import MemoryEventLog

PROJECTS = Path(__file__).parent / "resources" / "projects"


def written_pids(listing: Path) -> list[str]:
    """The pids the sleepy sample's test wrote down (its own and its child's), once both are."""
    return listing.read_text().split() if listing.exists() else []


def kill_pids(listing: Path) -> None:
    """Kill the processes whose pids a sample project wrote down."""
    for line in written_pids(listing):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line), signal.SIGKILL)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def open_job(log: EventLog, job_id: str, runner: dict[str, object]) -> None:
    from tests.store.conftest import make_event

    await log.append(
        [
            make_event(
                job_id,
                1,
                WorkflowEvent.WORKFLOW_SESSION_INITIALIZING,
                workflow="fast",
                project="/tmp/p",
                runner=runner,
            ),
            make_event(job_id, 2, WorkflowEvent.HOOK_STARTED),
        ]
    )


@pytest.mark.anyio
async def test_a_job_whose_runner_died_is_ended_once_with_status_error() -> None:
    here = runner_identity()["host"]
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        async with open_services(store_url="memory://") as services:
            log = services.log
            await open_job(log, "dead", {"host": here, "pid": dead_pid()})
            await open_job(log, "alive", {"host": here, "pid": alive.pid})
            await open_job(log, "elsewhere", {"host": f"not-{here}", "pid": dead_pid()})
            assert await end_orphaned_jobs(services.bus) == ["dead"]
            assert await end_orphaned_jobs(services.bus) == []
            statuses = {j.job_id: j.status for j in await log.list_jobs()}
            last = (await log.read("dead", after=2))[0]
    finally:
        alive.kill()
        alive.wait()
    assert statuses == {"dead": "error", "alive": "running", "elsewhere": "running"}
    assert last.event is WorkflowEvent.WORKFLOW_FAILED
    assert last.data["status"] == "error" and "ended without finishing" in last.data["reason"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_watch_ends_a_job_whose_spruce_run_was_killed_9(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path / 'events.db'}"
    project = shutil.copytree(PROJECTS / "sleepy", tmp_path / "sleepy")
    env = {**os.environ, "SLEEPY_PIDS": str(tmp_path / "pids.txt")}
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spruce",
            "run",
            str(project),
            "--store",
            store,
            "--job-id",
            "victim",
            "--workflow",
            "tests",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(written_pids(tmp_path / "pids.txt")) < 2:  # the job is mid-way, in its test
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.05)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the runner dies without a word, as with kill -9
        run.wait()
        kill_pids(tmp_path / "pids.txt")  # its tools run in sessions of their own
    watch = subprocess.run(
        [sys.executable, "-m", "spruce", "watch", "victim", "--json", "--store", store],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    events = [json.loads(line) for line in watch.stdout.splitlines()]
    assert watch.returncode == 1, watch.stderr
    assert events[-1]["event"] == "workflow_failed"
    assert events[-1]["data"]["status"] == "error"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    listed = subprocess.run(
        [sys.executable, "-m", "spruce", "jobs", "--json", "--store", store],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [(j["job_id"], j["status"]) for j in json.loads(listed.stdout)] == [("victim", "error")]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _FlakyLog(MemoryEventLog):
    """A memory log whose reads fail while `down` is set, as during a Redis outage."""

    down = False

    async def heartbeat(self, runner: str) -> int | None:
        if self.down:
            raise StoreError("the log is unreachable")
        return await super().heartbeat(runner)


@pytest.mark.anyio
async def test_another_host_s_runner_is_gone_only_after_a_window_of_seen_standstill() -> None:
    elsewhere = {"host": f"not-{runner_identity()['host']}", "pid": 7}
    log, clock = _FlakyLog(), _Clock()
    judge = LivenessJudge(log, window=30.0, clock=clock)
    for job_id in ("beating", "still", "never"):
        await open_job(log, job_id, elsewhere)
    await log.beat("beating", 1)
    await log.beat("still", 1)

    async def gone() -> list[str]:
        running = [job for job in await log.list_jobs() if job.status == "running"]
        return sorted(job.job_id for job in await judge.gone(running))

    for step in range(1, 7):  # 60 s of looks every 10 s: only the heartbeat that stood still
        clock.now += 10
        await log.beat("beating", 1 + step)
        assert await gone() == ([] if step < 4 else ["still"])

    # An outage: the runner cannot beat and this judge cannot read. Nothing it saw before
    # counts afterwards, however long the outage lasted.
    judge = LivenessJudge(log, window=30.0, clock=clock)
    assert await gone() == []
    log.down = True
    for _ in range(10):
        clock.now += 10
        with pytest.raises(StoreError):
            await gone()
    log.down = False
    clock.now += 10
    assert await gone() == []  # the first look after the outage starts a new window
    clock.now += 10
    assert await gone() == []
    clock.now += 100  # a long gap between two looks (this process slept): nothing seen then
    assert await gone() == []
    for _ in range(2):
        clock.now += 10
        assert await gone() == []
    clock.now += 10
    assert await gone() == ["beating", "still"]  # neither moved for a whole window of looks
