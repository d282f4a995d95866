"""Hostile input to the server's routes: answered 400 (HTTP) or closed 4400 (WebSocket), never
a 500 with a traceback, and a job id with a trailing newline is not a job id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from spruce.container import open_services
from spruce.jobs import JobRunner
from spruce.server.bridge import CloseCode
from tests.server.conftest import Served, serve_in_process, watch
from tests.server.test_bridge import publish_job

pytestmark = pytest.mark.anyio


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A server with a real JobRunner whose only root is tmp_path/root, and one ended job "j1"."""
    root = tmp_path / "root"
    root.mkdir()
    async with open_services(store_url="memory://") as services:
        runner = JobRunner(services, roots=[root])
        try:
            async with serve_in_process(services, runner=runner, roots=[root]) as served:
                await publish_job(services.bus, "j1", 3)
                yield served
        finally:
            await runner.aclose()


async def test_a_job_id_with_a_trailing_newline_is_malformed_not_unknown(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.http) as client:
        for path in ("/api/jobs/j1%0A", "/api/jobs/j1%0A/events"):
            response = await client.get(path)
            assert response.status_code == 400, path
            assert "invalid job id" in response.json()["error"]
        assert (await client.post("/api/jobs/j1%0A/cancel")).status_code == 400
    reading = await watch(f"{served.ws}/ws/progress/j1%0A")
    assert reading.close_code == CloseCode.BAD_REQUEST and not reading.messages
    reading = await watch(f"{served.ws}/ws/progress?after=0%0A")
    assert reading.close_code == CloseCode.BAD_REQUEST and not reading.messages


@pytest.mark.parametrize(
    ("project", "says"),
    [
        ("{root}/\x00x", "embedded null byte"),
        ("{root}/" + "a" * 300, "File name too long"),
        ("{root}/" + "a/" * 3000, "File name too long"),
        ("~no-such-user-of-spruce/x", "not usable"),
    ],
    ids=["nul-byte", "long-name", "long-path", "unknown-user"],
)
async def test_a_project_path_that_cannot_name_a_directory_gets_400(
    served: Served, tmp_path: Path, project: str, says: str
) -> None:
    body = {"project": project.format(root=tmp_path / "root")}
    async with httpx.AsyncClient(base_url=served.http) as client:
        response = await client.post("/api/jobs", json=body)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert message.startswith("project path ") and says in message
    assert len(message) < 400  # the path is cut, not echoed whole


async def test_non_ascii_digits_in_cursors_get_400_or_4400(served: Served) -> None:
    # "²".isdigit() holds but int("²") raises: such a cursor must not reach int().
    async with httpx.AsyncClient(base_url=served.http) as client:
        for after in ("²", "٣", "1²"):
            response = await client.get("/api/jobs/j1/events", params={"after": after})
            assert response.status_code == 400, after
            assert "invalid after" in response.json()["error"]
        response = await client.get("/api/jobs", params={"limit": "²"})
        assert response.status_code == 200
    reading = await watch(f"{served.ws}/ws/progress/j1?after=%C2%B2")
    assert reading.close_code == CloseCode.BAD_REQUEST and not reading.messages
