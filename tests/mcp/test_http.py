"""MCP over streamable HTTP at `/mcp` of a real `spruce serve`: one bus for agents, API, sockets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from mcp import Client

from tests.conftest import free_port
from tests.mcp.conftest import structured, wait_until_ended

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[str]:
    """A `spruce serve` subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    store = f"sqlite://{tmp_path / 'events.db'}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spruce",
            "serve",
            "--port",
            str(port),
            "--store",
            store,
            "--root",
            str(tmp_path),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr and process.stderr.read().decode()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "spruce serve did not come up"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


def _project(root: Path) -> Path:
    project = root / "project"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0"\n')
    (project / "src" / "p.py").write_text("import os\n")
    return project


async def test_a_job_an_agent_starts_over_http_shows_in_the_api_and_on_its_websocket(
    serve: str, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    async with Client(f"{serve}/mcp") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        started = await client.call_tool(
            "run_workflow", {"project": str(project), "workflow": "fast"}
        )
        job_id = structured(started)["job_id"]
        document = await wait_until_ended(client, job_id)

    async with httpx.AsyncClient(base_url=serve) as http:
        from_api = (await http.get(f"/api/jobs/{job_id}")).json()
    async with websockets.connect(f"ws{serve[4:]}/ws/progress/{job_id}") as socket:
        seqs = [json.loads(message)["seq"] async for message in socket]

    assert "run_workflow" in tools
    assert document["status"] in ("passed", "failed")
    assert from_api == document
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 2


async def test_a_job_started_through_the_http_api_is_visible_to_the_agent(
    serve: str, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    async with httpx.AsyncClient(base_url=serve) as http:
        response = await http.post("/api/jobs", json={"project": str(project), "workflow": "fast"})
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]

    async with Client(f"{serve}/mcp") as client:
        listed = structured(await client.call_tool("list_jobs", {}))["jobs"]
        document = await wait_until_ended(client, job_id)

    assert job_id in [job["job_id"] for job in listed]
    assert document["job_id"] == job_id
    assert document["status"] != "running"
