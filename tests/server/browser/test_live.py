"""The job page while a real job runs: test progress grows before the suite ends, a selection
and the keyboard focus survive live updates, a cancel the server refuses says why, and an
unknown or malformed job id says so (and stays said)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from spruce.container import open_services
from spruce.jobs import JobRunner
from tests.server.browser.conftest import (
    open_page,
    overflow,
    problems,
    screenshot,
    serious_violations,
)
from tests.server.browser.projects import held_project, start_job
from tests.server.conftest import Served, memory_server, serve_in_process, stop, wait_for_job

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
SOME_DONE = re.compile(r"^[1-9]\d* / \d+ tests")


async def test_an_unknown_or_malformed_job_id_says_so_and_offers_no_cancel(
    browser: Browser,
) -> None:
    async with memory_server() as served:
        page = await open_page(browser, f"{served.http}/#/job/nosuchjob")
        await expect(page.locator("#job-status")).to_have_text("not found")
        await expect(page.locator("#job-meta")).to_have_text(
            "No job with id “nosuchjob” on this server."
        )
        await page.wait_for_timeout(1500)  # several redraw ticks later, it still says so
        await expect(page.locator("#job-status")).to_have_text("not found")
        await expect(page.locator("#cancel-job")).to_be_hidden()
        assert "not found" in await page.title()

        await page.goto(f"{served.http}/#/job/bad%20id!")
        await expect(page.locator("#job-meta")).to_contain_text("Invalid job id")
        await expect(page.locator("#cancel-job")).to_be_hidden()
        assert problems(page) == []


async def _held_job_page(browser: Browser, runner_server: tuple[Served, Path]) -> tuple[Page, Path]:
    """A page on a default job that holds until the returned file exists."""
    served, root = runner_server
    release = root / "release"
    job_id = await start_job(served, held_project(root, release))
    return await open_page(browser, f"{served.http}/#/job/{job_id}"), release


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_test_progress_grows_while_a_default_job_still_runs(
    browser: Browser, runner_server: tuple[Served, Path]
) -> None:
    page, release = await _held_job_page(browser, runner_server)
    try:
        # The held test and hook have not ended: the quick tests are shown while the checks
        # still run beside them.
        await expect(page.locator("#tests-text")).to_have_text(SOME_DONE)
        await expect(page.locator("#job-status")).to_have_text("running")
        for phase in ("tests", "comprehensive_hooks"):
            row = page.locator(f'.row.phase[data-unit="{phase}"]')
            await expect(row).to_have_attribute("data-status", "running")
        shown = await page.locator("#tests-text").text_content()
        assert shown is not None and not shown.startswith("6 / 6")
        phone = await open_page(browser, page.url, width="phone", scheme="dark")
        await expect(phone.locator("#tests-text")).to_have_text(SOME_DONE)
        for view, name in ((page, "desktop-light"), (phone, "phone-dark")):
            await screenshot(view, f"job-running-{name}")
            assert await overflow(view) == 0, name  # running rows say more: they still fit
            assert await serious_violations(view) == [], name
    finally:
        release.touch()
    await expect(page.locator("#tests-text")).to_contain_text("6 / 6 tests")
    await expect(page.locator("#job-status")).not_to_have_text("running")
    assert problems(page) == []


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_selection_and_the_focus_survive_live_updates(
    browser: Browser, runner_server: tuple[Served, Path]
) -> None:
    page, release = await _held_job_page(browser, runner_server)
    try:
        message = page.locator('.hook-group[data-hook="ruff-check"] .finding .message').first
        await expect(message).to_contain_text("imported but unused")
        await expect(page.locator("#job-status")).to_have_text("running")
        selected = await select_and_focus(page)
    finally:
        release.touch()
    await expect(page.locator("#job-status")).not_to_have_text("running")
    await expect(page.locator('.hook-group[data-hook="vulture"]')).to_be_visible()
    assert await page.evaluate("getSelection().toString()") == selected
    assert await page.evaluate("document.activeElement.dataset.copy") == "tool.py:1:8"
    assert problems(page) == []


async def select_and_focus(page: Page) -> str:
    """Select the first finding's message and focus its copy button; the selected text."""
    selected: str = await page.evaluate(
        """() => {
            const item = document.querySelector('.hook-group[data-hook="ruff-check"] .finding');
            item.querySelector("button.copy").focus();
            const range = document.createRange();
            range.selectNodeContents(item.querySelector(".message"));
            getSelection().removeAllRanges();
            getSelection().addRange(range);
            return getSelection().toString();
        }"""
    )
    assert "imported but unused" in selected
    return selected


@contextlib.asynccontextmanager
async def sqlite_server(root: Path, url: str) -> AsyncIterator[Served]:
    """A server with its own job runner on a SQLite log other processes write too."""
    async with open_services(store_url=url) as services:
        runner = JobRunner(services, roots=[root])
        try:
            async with serve_in_process(services, runner=runner, roots=[root]) as served:
                yield served
        finally:
            await runner.aclose()


@contextlib.contextmanager
def terminal_run(project: Path, url: str, job_id: str, log: Path) -> Iterator[None]:
    """`spruce run` as another process (as from a terminal), stopped and reaped at the end."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spruce", "run", str(project), "--store", url,
             "--job-id", job_id],
            stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            yield
        finally:
            stop(proc)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_cancel_the_server_refuses_shows_its_message(
    browser: Browser, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    release = tmp_path / "release"
    url = f"sqlite://{tmp_path / 'events.db'}"
    project = held_project(root, release)
    async with sqlite_server(root, url) as served:
        with terminal_run(project, url, "from-terminal", tmp_path / "run.log"):
            await wait_for_job(served.http, "from-terminal")
            page = await open_page(browser, f"{served.http}/#/job/from-terminal")
            try:
                await expect(page.locator("#job-status")).to_have_text("running")
                await page.click("#cancel-job")
                await expect(page.locator("#cancel-error")).to_contain_text(
                    "Cancel failed: job 'from-terminal' is not run by this server"
                )
                await expect(page.locator("#job-status")).to_have_text("running")
            finally:
                release.touch()
            await expect(page.locator("#job-status")).not_to_have_text("running")
        assert [p for p in problems(page) if "/cancel" not in p] == []
