"""The job page says what test selection ran and what it carried from an earlier job, and says
nothing of it when every test ran (real jobs through the API, real Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.server.browser.conftest import (
    open_page,
    overflow,
    problems,
    screenshot,
    serious_violations,
)
from tests.server.browser.projects import run_job
from tests.server.conftest import Served
from tests.workflow.runner import two_module_project

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
OTHER = (
    '"""Another module."""\n\n\ndef sub(left: int, right: int) -> int:\n    return left - right\n'
)
OTHER_TEST = "from other import sub\n\n\ndef test_sub() -> None:\n    assert sub(3, 1) == 2\n"


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_the_job_page_says_what_ran_and_what_was_carried(
    browser: Browser,
    runner_server: tuple[Served, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)  # selection runs as on a developer's machine
    monkeypatch.setenv("SPRUCE_CACHE_DIR", str(tmp_path / "cache"))
    served, root = runner_server
    project, edit = two_module_project(root)
    first = await run_job(served, project)
    edit()
    second = await run_job(served, project)

    page = await open_page(browser, f"{served.http}/#/job/{first}")
    await expect(page.locator("#tests-text")).to_contain_text("3 / 3 tests")
    await expect(page.locator("#tests-selection")).to_be_hidden()
    await page.goto(f"{served.http}/#/job/{second}")
    selection = page.locator("#tests-selection")
    await expect(selection).to_have_text(f"1 of 3 tests run; 2 carried from job {first}")
    await expect(page.locator("#tests-text")).to_contain_text("3 / 3 tests · 0 failing")
    phone = await open_page(browser, page.url, width="phone", scheme="dark")
    await expect(phone.locator("#tests-selection")).to_be_visible()
    for view, name in ((page, "desktop-light"), (phone, "phone-dark")):
        await screenshot(view, f"job-selected-{name}")
        assert await overflow(view) == 0, name
        assert await serious_violations(view) == [], name
    assert problems(page) == [] and problems(phone) == []
