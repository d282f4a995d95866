"""GET /api/stats through a real uvicorn: the same document as `spruce stats --json`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from spruce.insights import collect_stats
from tests.server.conftest import memory_server
from tests.stats_log import EXPECTED_FLAKY, EXPECTED_MYPY, PROJECT, fill_known_log

pytestmark = pytest.mark.anyio


async def test_stats_of_a_project_and_of_every_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPRUCE_CACHE_DIR", str(tmp_path / "cache"))
    async with memory_server() as served, httpx.AsyncClient(base_url=served.http) as client:
        await fill_known_log(served.services.log)
        response = await client.get("/api/stats", params={"project": PROJECT, "jobs": "50"})
        assert response.status_code == 200
        stats = response.json()
        assert stats == await collect_stats(served.services.log, project=PROJECT, jobs=50)
        assert (stats["schema"], stats["jobs"]) == ("spruce.stats/1", 6)
        assert next(h for h in stats["hooks"] if h["id"] == "mypy") == EXPECTED_MYPY
        assert stats["flaky_tests"] == EXPECTED_FLAKY
        everything = (await client.get("/api/stats")).json()
        assert (everything["project"], everything["jobs"]) == (None, 7)
        assert (await client.get("/api/stats", params={"jobs": "2"})).json()["jobs"] == 2


async def test_malformed_stats_queries_get_400() -> None:
    async with memory_server() as served, httpx.AsyncClient(base_url=served.http) as client:
        for params in ({"project": "relative/path"}, {"jobs": "0"}, {"jobs": "-3"}, {"jobs": "x"}):
            response = await client.get("/api/stats", params=params)
            assert response.status_code == 400, params
            assert "invalid" in response.json()["error"]
