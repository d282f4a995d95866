"""The dashboard in real headless Chromium: start a job from the page and watch it finish; the
job list updates live from the all-jobs stream."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from spruce.events import WorkflowEvent
from tests.server.browser.conftest import open_page, problems
from tests.server.conftest import PROJECTS, Served, memory_server
from tests.server.test_bridge import publish_job

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_job_started_from_the_dashboard_shows_its_phases_status_and_findings(
    browser: Browser, runner_server: tuple[Served, Path]
) -> None:
    served, root = runner_server
    project = shutil.copytree(PROJECTS / "lint", root / "lint")
    page = await open_page(browser, f"{served.http}/")
    await page.fill("#start-project", str(project))
    await page.select_option("#start-workflow", "fast")
    await page.click("#start-form button")
    await expect(page.locator("#job-status")).to_have_text("failed")

    job_id = page.url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=served.http) as client:
        result = (await client.get(f"/api/jobs/{job_id}")).json()
    hooks = [hook for phase in result["phases"] for hook in phase["hooks"]]
    findings = sum(len(hook["findings"]) for hook in hooks)
    assert findings > 0
    await expect(page.locator("#finding-count")).to_have_text(str(findings))
    for phase in result["phases"]:
        row = page.locator(f'.row.phase[data-unit="{phase["name"]}"]')
        await expect(row).to_have_attribute("data-status", phase["status"])
    ruff = page.locator('.row.hook[data-unit="ruff-check"]')
    await expect(ruff).to_have_attribute("data-status", "failed")
    await expect(page.locator("#findings .finding .loc").first).to_contain_text("tool.py:")
    assert problems(page) == []


@pytest.mark.timeout(120)
async def test_the_job_list_and_a_job_page_follow_a_running_job_live(browser: Browser) -> None:
    async with memory_server() as served:
        bus = served.services.bus
        page = await open_page(browser, f"{served.http}/")
        await expect(page.locator("#no-jobs")).to_be_visible()
        await publish_job(bus, "live1", 3, end=False)
        row = page.locator('tr[data-job="live1"]')
        await expect(row.locator(".status")).to_have_text("running")

        job_page = await open_page(browser, f"{served.http}/#/job/live1")
        await expect(job_page.locator("#job-status")).to_have_text("running")

        async def emit(kind: WorkflowEvent, step: str | None, **data: object) -> None:
            await bus.publish(kind, job_id="live1", step_id=step, data=data)
            await bus.flush()

        await emit(WorkflowEvent.TEST_PHASE_STARTED, "tests", phase="tests", total=4)
        for done in (1, 2):
            await emit(WorkflowEvent.TEST_CASE_COMPLETED, f"tests/t::{done}", outcome="passed",
                       done=done, total=4, nodeid=f"t::{done}")  # fmt: skip
        await expect(job_page.locator("#tests-text")).to_contain_text("2 / 4 tests")
        tests_row = job_page.locator('.row.phase[data-unit="tests"]')
        await expect(tests_row).to_have_attribute("data-status", "running")
        counts = {"passed": 4, "failed": 0, "skipped": 0, "errors": 0, "total": 4}
        await emit(WorkflowEvent.TEST_PHASE_COMPLETED, "tests", phase="tests", status="passed",
                   duration=0.4, **counts)  # fmt: skip
        await emit(WorkflowEvent.WORKFLOW_COMPLETED, None, status="passed", duration=1.0)
        await expect(job_page.locator("#job-status")).to_have_text("passed")
        await expect(job_page.locator('.row.phase[data-unit="tests"]')).to_have_attribute(
            "data-status", "passed"
        )
        await expect(row.locator(".status")).to_have_text("passed")
        assert problems(page) == [] and problems(job_page) == []
