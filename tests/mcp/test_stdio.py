"""A real `spruce mcp` subprocess driven over stdio by the SDK's client, as an agent's host does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.mcp.conftest import (
    RESOURCES,
    error_text,
    processes_in,
    structured,
    wait_until_ended,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SAMPLE = RESOURCES / "projects" / "lint"


def _spruce_mcp(store_url: str, root: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "spruce", "mcp", "--store", store_url, "--root", str(root)],
        cwd=str(root),
    )


def essence(document: dict[str, Any]) -> dict[str, Any]:
    """What two runs of one project must agree on: statuses, findings, test counts."""
    return {
        "status": document["status"],
        "workflow": document["workflow"],
        "project": document["project"],
        "tests": document["tests"],
        "phases": [
            {
                "name": phase["name"],
                "status": phase["status"],
                # Hooks of a phase run concurrently: their order is not part of the contract.
                "hooks": sorted(
                    (hook["id"], hook["status"], hook["exit_code"], hook["findings"])
                    for hook in phase["hooks"]
                ),
            }
            for phase in document["phases"]
        ],
    }


def spruce_run_json(project: Path, store_url: str) -> dict[str, Any]:
    """`spruce run PROJECT --format json`, as a user would run it in a terminal."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spruce",
            "run",
            str(project),
            "--format=json",
            f"--store={store_url}",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        start_new_session=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


async def test_stdio_server_lists_its_tools_with_output_schemas(tmp_path: Path) -> None:
    async with Client(_spruce_mcp(f"sqlite://{tmp_path / 'events.db'}", tmp_path)) as client:
        tools = (await client.list_tools()).tools
        unknown = await client.call_tool("get_job", {"job_id": "nope"})

    assert {tool.name for tool in tools} >= {"run_workflow", "wait_for_job", "get_job_events"}
    assert all(tool.output_schema and tool.output_schema["type"] == "object" for tool in tools)
    assert unknown.is_error
    assert error_text(unknown) == "no job 'nope' in the event log; list_jobs shows the known jobs"


async def test_stdio_server_runs_the_sample_project_finding_what_spruce_run_finds(
    tmp_path: Path,
) -> None:
    project = Path(shutil.copytree(SAMPLE, tmp_path / "project"))
    store_url = f"sqlite://{tmp_path / 'events.db'}"
    async with Client(_spruce_mcp(store_url, tmp_path)) as client:
        started = structured(await client.call_tool("run_workflow", {"project": str(project)}))
        progress: list[float] = []
        document = await wait_until_ended(client, started["job_id"], progress_seen=progress)
        # The same project from a terminal, into the same event log, while the agent is connected.
        from_terminal = await anyio.to_thread.run_sync(spruce_run_json, project, store_url)
        seen_by_agent = structured(
            await client.call_tool("get_job", {"job_id": from_terminal["job_id"], "detail": "full"})
        )
        listed = structured(await client.call_tool("list_jobs", {}))["jobs"]

    assert document["status"] == "failed"
    assert any(hook[3] for phase in essence(document)["phases"] for hook in phase["hooks"])
    assert essence(document) == essence(from_terminal)
    assert progress and progress == sorted(set(progress)), "progress must strictly increase"
    assert seen_by_agent == from_terminal
    assert [job["job_id"] for job in listed] == [from_terminal["job_id"], started["job_id"]]


async def test_closing_the_client_mid_job_cancels_it_and_leaves_no_process(tmp_path: Path) -> None:
    project = Path(shutil.copytree(RESOURCES / "projects" / "sleepy", tmp_path / "sleepy"))
    store_url = f"sqlite://{tmp_path / 'events.db'}"
    async with Client(_spruce_mcp(store_url, tmp_path)) as client:
        started = await client.call_tool(
            "run_workflow", {"project": str(project), "workflow": "tests"}
        )
        job_id = structured(started)["job_id"]
        with anyio.fail_after(60):
            while len(processes_in(project)) < 2:  # pytest and its sleeping child
                await anyio.sleep(0.1)

    with anyio.fail_after(15):
        while processes_in(project):
            await anyio.sleep(0.1)
    async with Client(_spruce_mcp(store_url, tmp_path)) as client:
        document = structured(await client.call_tool("get_job", {"job_id": job_id}))
    assert document["status"] == "cancelled"


def _pid_of_server(marker: str) -> int:
    """The pid of the `spruce mcp` process whose command line holds `marker`."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"mcp" in argv and marker.encode() in b" ".join(argv):
                return int(entry.name)
    raise AssertionError(f"no spruce mcp process with {marker}")


async def test_sigterm_mid_job_cancels_it_and_leaves_no_process(tmp_path: Path) -> None:
    project = Path(shutil.copytree(RESOURCES / "projects" / "sleepy", tmp_path / "sleepy"))
    store_url = f"sqlite://{tmp_path / 'events.db'}"
    async with Client(_spruce_mcp(store_url, tmp_path)) as client:
        started = await client.call_tool(
            "run_workflow", {"project": str(project), "workflow": "tests"}
        )
        job_id = structured(started)["job_id"]
        with anyio.fail_after(60):
            while len(processes_in(project)) < 2:
                await anyio.sleep(0.1)
        server = _pid_of_server(store_url)
        os.kill(server, signal.SIGTERM)
        with anyio.fail_after(15):
            while Path(f"/proc/{server}").exists() and _state(server) != "Z":
                await anyio.sleep(0.05)

    assert processes_in(project) == []
    async with Client(_spruce_mcp(store_url, tmp_path)) as client:
        document = structured(await client.call_tool("get_job", {"job_id": job_id}))
    assert document["status"] == "cancelled"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
