"""What frames every view: the job list keeps its order, the connection state and the banner
when the server is gone, the tab title, the favicon, reduced motion and live announcements."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, expect

from spruce.events import WorkflowEvent as E
from tests.server.browser.conftest import open_page, problems
from tests.server.conftest import memory_server
from tests.server.test_bridge import publish_job

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


@pytest.mark.timeout(120)
async def test_the_job_list_keeps_its_order_under_live_events_and_shows_dates(
    browser: Browser,
) -> None:
    async with memory_server() as served:
        bus = served.services.bus
        await publish_job(bus, "older", 3, end=False)
        await publish_job(bus, "newer", 3, end=False)
        page = await open_page(browser, f"{served.http}/")
        rows = page.locator("#jobs tr")
        await expect(rows).to_have_count(2)
        order = ["newer", "older"]
        assert await rows.evaluate_all("rows => rows.map(r => r.dataset.job)") == order
        first = await rows.first.element_handle()

        await publish_job(bus, "older", 3, end=True)  # the older job gets events and ends
        await expect(page.locator('tr[data-job="older"] .status')).to_have_text("passed")
        assert await rows.evaluate_all("rows => rows.map(r => r.dataset.job)") == order
        assert await page.evaluate("(row) => row.isConnected", first)  # updated, not replaced
        await publish_job(bus, "newest", 2, end=False)
        await expect(rows.first).to_have_attribute("data-job", "newest")
        year = re.compile(r"\b20\d\d\b")
        await expect(page.locator('tr[data-job="older"] td.when')).to_have_text(year)
        assert re.match(r"\(2 running\) Jobs", await page.title())
        assert problems(page) == []


@pytest.mark.timeout(120)
async def test_a_banner_and_the_connection_state_say_when_the_server_is_gone(
    browser: Browser,
) -> None:
    async with memory_server() as served:
        await publish_job(served.services.bus, "j", 3, end=True)
        page = await open_page(browser, f"{served.http}/")
        connection = page.locator("#connection")
        await expect(connection).to_have_attribute("data-state", "live")
        await expect(page.locator("#server-banner")).to_be_hidden()
        live = await connection.locator(".dot").evaluate("d => getComputedStyle(d).backgroundColor")
        await expect(page.locator('tr[data-job="j"] .status')).to_have_text("passed")
    # The server has stopped: the page says so, in words, not only in colour.
    await expect(page.locator("#server-banner")).to_be_visible()
    await expect(connection).to_have_attribute("data-state", "lost")
    await expect(page.locator("#connection-text")).to_have_text("offline")
    lost = await connection.locator(".dot").evaluate("d => getComputedStyle(d).backgroundColor")
    await page.goto("about:blank")
    assert live != lost


@pytest.mark.timeout(120)
async def test_title_favicon_reduced_motion_and_live_region_follow_the_job(
    browser: Browser,
) -> None:
    async with memory_server() as served:
        bus = served.services.bus
        async with httpx.AsyncClient(base_url=served.http) as client:
            icon = await client.get("/favicon.ico")
            linked = await client.get("/static/favicon.svg")
        assert icon.status_code == linked.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")

        await publish_job(bus, "t1", 2, end=False)
        page = await open_page(browser, f"{served.http}/#/job/t1")
        await expect(page).to_have_title("running · t1 · spruce")
        await expect(page.locator("#announcer")).to_have_text("Job t1: running")
        assert await page.locator("#job-status").get_attribute("aria-live") == "polite"
        running = page.locator(".seg.running").first
        await expect(running).to_be_attached()
        assert await running.evaluate("s => getComputedStyle(s).animationName") == "none"

        moving = await open_page(browser, f"{served.http}/#/job/t1", motion="no-preference")
        await expect(moving.locator(".seg.running").first).to_be_attached()
        name = await moving.locator(".seg.running").first.evaluate(
            "s => getComputedStyle(s).animationName"
        )
        assert name == "pulse"

        await bus.publish(E.WORKFLOW_FAILED, job_id="t1", data={"status": "failed",
                          "reason": "checks failed"})  # fmt: skip
        await bus.flush()
        await expect(page).to_have_title("failed · t1 · spruce")
        await expect(page.locator("#announcer")).to_have_text("Job t1: failed")
        await expect(page.locator("#job-reason")).to_have_text("checks failed")
        await expect(page.locator("#connection")).to_have_attribute("data-state", "idle")
        assert problems(page) == [] and problems(moving) == []


@pytest.mark.timeout(120)
async def test_leaving_a_running_job_for_another_leaves_no_trace_of_the_first(
    browser: Browser,
) -> None:
    async with memory_server() as served:
        bus = served.services.bus
        await publish_job(bus, "first", 3, end=False)
        await publish_job(bus, "second", 3, end=True)
        page = await open_page(browser, f"{served.http}/#/job/first")
        await expect(page.locator("#job-status")).to_have_text("running")
        await page.goto(f"{served.http}/#/job/second")
        await expect(page.locator("#job-status")).to_have_text("passed")
        await publish_job(bus, "first", 3, end=False)  # the first job goes on meanwhile
        await page.wait_for_timeout(1500)  # several ticks of the first page's clock
        await expect(page.locator("#job-status")).to_have_text("passed")
        await expect(page).to_have_title("passed · second · spruce")
        assert problems(page) == []
