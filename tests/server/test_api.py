"""The HTTP API through a real uvicorn: reads, job start and cancel with the real JobRunner,
security answers (401/403/413), and /metrics."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import anyio
import httpx
import pytest

from spruce.container import open_services
from spruce.events import WorkflowEvent
from spruce.jobs import JobRunner
from spruce.store.base import Retention
from tests.server.conftest import Served, memory_server, serve_in_process, watch
from tests.server.test_bridge import publish_job

pytestmark = pytest.mark.anyio
PROJECTS = Path(__file__).parent.parent / "resources" / "projects"


async def test_jobs_list_events_and_result_document() -> None:
    async with memory_server() as served, httpx.AsyncClient(base_url=served.http) as client:
        await publish_job(served.services.bus, "j1", 5)
        listing = (await client.get("/api/jobs")).json()
        assert [job["job_id"] for job in listing["jobs"]] == ["j1"]
        assert listing["jobs"][0]["status"] == "passed" and listing["cursor"] == "5"
        page = (await client.get("/api/jobs/j1/events", params={"after": 3})).json()
        assert [e["seq"] for e in page["events"]] == [4, 5] and page["next_cursor"] == 5
        result = (await client.get("/api/jobs/j1")).json()
        assert result["schema"] == "spruce.result/1"
        assert result["job_id"] == "j1" and result["status"] == "passed"


async def test_malformed_ids_and_cursors_get_400_and_unknown_jobs_404() -> None:
    async with memory_server() as served, httpx.AsyncClient(base_url=served.http) as client:
        await publish_job(served.services.bus, "j1", 3)
        for path in ("/api/jobs/bad%20id", "/api/jobs/" + "x" * 65, "/api/jobs/%00/events"):
            response = await client.get(path)
            assert response.status_code == 400, path
            assert "invalid job id" in response.json()["error"]
        for after in ("-1", "abc", "1e3", "9" * 30):
            response = await client.get("/api/jobs/j1/events", params={"after": after})
            assert response.status_code == 400, after
        assert (await client.get("/api/jobs/nope")).status_code == 404
        assert (await client.get("/api/jobs/nope/events")).status_code == 404
        assert (await client.post("/api/jobs/nope/cancel")).status_code == 404


async def test_a_cursor_removed_by_retention_gets_410_with_the_earliest() -> None:
    async with memory_server() as served, httpx.AsyncClient(base_url=served.http) as client:
        await publish_job(served.services.bus, "r", 30)
        await served.services.log.gc(
            Retention(keep_days=None, keep_jobs=None, max_events_per_job=10)
        )
        response = await client.get("/api/jobs/r/events", params={"after": 2})
        assert response.status_code == 410 and response.json()["earliest"] == 21


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_job_started_over_http_runs_and_streams_to_its_end(
    runner_server: tuple[Served, Path],
) -> None:
    served, root = runner_server
    project = shutil.copytree(PROJECTS / "lint", root / "lint")
    async with httpx.AsyncClient(base_url=served.http, timeout=60) as client:
        response = await client.post(
            "/api/jobs", json={"project": str(project), "workflow": "fast"}
        )
        assert response.status_code == 202
        job_id = response.json()["job_id"]
        reading = await watch(f"{served.ws}/ws/progress/{job_id}", timeout=90)
        assert reading.close_code == 1000
        assert reading.messages[-1]["event"] == "workflow_failed"
        result = (await client.get(f"/api/jobs/{job_id}")).json()
    assert result["status"] == "failed" and result["workflow"] == "fast"
    ruff = [h for p in result["phases"] for h in p["hooks"] if h["id"] == "ruff-check"]
    assert ruff and ruff[0]["findings"], "the lint project's finding is in the document"


async def test_starting_a_job_outside_the_roots_or_with_a_bad_body_is_refused(
    runner_server: tuple[Served, Path], tmp_path: Path
) -> None:
    served, root = runner_server
    outside = shutil.copytree(PROJECTS / "lint", tmp_path / "outside")
    async with httpx.AsyncClient(base_url=served.http) as client:
        response = await client.post("/api/jobs", json={"project": str(outside)})
        assert (
            response.status_code == 403 and "outside the allowed roots" in response.json()["error"]
        )
        sneaky = str(root / ".." / "outside")  # a path under the root by prefix only
        assert (await client.post("/api/jobs", json={"project": sneaky})).status_code == 403
        missing = await client.post("/api/jobs", json={"project": str(root / "missing")})
        assert missing.status_code == 400
        unknown = await client.post("/api/jobs", json={"project": str(root), "workflow": "nope"})
        assert unknown.status_code == 400 and "unknown workflow" in unknown.json()["error"]
        for body in (b"not json", b"[]", b'{"project": 3}', b'{"project": "/", "x": 1}'):
            assert (await client.post("/api/jobs", content=body)).status_code == 400, body
        huge = await client.post("/api/jobs", content=b"{" + b" " * 100_000 + b"}")
        assert huge.status_code == 413
    assert served.services.log is not None and not await served.services.log.list_jobs()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_cancel_ends_a_job_this_server_runs_and_refuses_one_it_does_not(
    runner_server: tuple[Served, Path],
) -> None:
    served, root = runner_server
    project = shutil.copytree(PROJECTS / "sleepy", root / "sleepy")
    await publish_job(served.services.bus, "elsewhere", 3, end=False)  # not this runner's
    async with httpx.AsyncClient(base_url=served.http, timeout=60) as client:
        response = await client.post(
            "/api/jobs", json={"project": str(project), "workflow": "tests"}
        )
        job_id = response.json()["job_id"]
        cancelled = await client.post(f"/api/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
        assert (await client.get(f"/api/jobs/{job_id}")).json()["status"] == "cancelled"
        again = await client.post(f"/api/jobs/{job_id}/cancel")
        assert again.status_code == 409 and "already ended" in again.json()["error"]
        other = await client.post("/api/jobs/elsewhere/cancel")
        assert other.status_code == 409 and "not run by this server" in other.json()["error"]


async def test_cross_origin_writes_are_refused_and_same_origin_ones_pass() -> None:
    async with memory_server() as served, httpx.AsyncClient(base_url=served.http) as client:
        await publish_job(served.services.bus, "j", 2, end=False)
        for origin in (
            "http://evil.example",
            f"{served.http}.evil.example",  # a prefix match would let this in
            f"http://127.0.0.1:{served.port + 1}",
            "null",
        ):
            response = await client.post("/api/jobs/j/cancel", headers={"Origin": origin})
            assert response.status_code == 403, origin
        same = await client.post("/api/jobs/j/cancel", headers={"Origin": served.http})
        assert same.status_code == 409  # past the origin check: no runner runs it here
        # reads are not writes: a cross-origin GET is answered (the browser keeps it from the page)
        assert (await client.get("/api/jobs", headers={"Origin": "http://evil.example"})).is_success


async def test_a_foreign_host_header_is_refused_against_dns_rebinding() -> None:
    async with memory_server() as served, httpx.AsyncClient(base_url=served.http) as client:
        assert (
            await client.get("/api/jobs", headers={"Host": "evil.example:80"})
        ).status_code == 403
        assert (await client.get("/api/jobs", headers={"Host": "localhost:1"})).status_code == 200


async def test_a_token_is_required_by_header_or_query_when_configured() -> None:
    async with (
        memory_server(token="s3cret") as served,
        httpx.AsyncClient(base_url=served.http) as client,
    ):
        assert (await client.get("/api/jobs")).status_code == 401
        wrong = await client.get("/api/jobs", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        bearer = await client.get("/api/jobs", headers={"Authorization": "Bearer s3cret"})
        assert bearer.status_code == 200
        assert (await client.get("/api/jobs", params={"token": "s3cret"})).status_code == 200
        assert (await client.get("/metrics")).status_code == 401
        # the dashboard page and the health check are public; the page sends the token itself
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200


async def test_metrics_are_prometheus_text_named_spruce() -> None:
    async with memory_server() as served, httpx.AsyncClient(base_url=served.http) as client:
        await publish_job(served.services.bus, "m", 4)
        await served.services.bus.publish(
            WorkflowEvent.HOOK_COMPLETED,
            job_id="m2",
            step_id="fast_hooks/ruff-check",
            data={"hook": "ruff-check", "phase": "fast_hooks", "status": "passed", "duration": 0.5},
        )
        await served.services.bus.flush()
        # flush() means stored and handed over; the metrics subscriber counts in its own task
        hook_line = 'spruce_hook_duration_seconds_sum{hook="ruff-check",status="passed"} 0.5'
        with anyio.fail_after(10):
            while hook_line not in (response := await client.get("/metrics")).text:
                await anyio.sleep(0.02)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples and all(line.startswith("spruce_") for line in samples)
    assert all(re.fullmatch(r"[a-z_]+(\{.*\})? [0-9.e+-]+", line) for line in samples)
    assert "spruce_bus_published_total 5" in text
    assert 'spruce_jobs{status="passed"} 1' in text
    assert 'spruce_jobs{status="running"} 1' in text
    assert 'spruce_hook_duration_seconds_sum{hook="ruff-check",status="passed"} 0.5' in text
    assert 'spruce_ws_clients{stream="job"} 0' in text
    assert "spruce_ws_slow_consumer_closes_total 0" in text


async def test_starting_past_the_runners_limit_answers_429_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLEEPY_PIDS", str(tmp_path / "pids.txt"))
    project = shutil.copytree(PROJECTS / "sleepy", tmp_path / "sleepy")
    async with open_services(store_url="memory://") as services:
        runner = JobRunner(services, roots=[tmp_path], max_running=1)
        try:
            async with (
                serve_in_process(services, runner=runner, roots=[tmp_path]) as served,
                httpx.AsyncClient() as client,
            ):
                body = {"project": str(project), "workflow": "tests"}
                first = await client.post(f"{served.http}/api/jobs", json=body)
                second = await client.post(f"{served.http}/api/jobs", json=body)
        finally:
            await runner.aclose()
    assert first.status_code == 202
    assert second.status_code == 429
    assert second.headers["retry-after"] == "5"
    assert "already running" in second.json()["error"]
