"""Findings on the job page: grouped by hook and file, searched and filtered in place, a cut
list says how many more there are, locations are copied and linked to the user's editor."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from spruce.bus import WorkflowEventBus
from spruce.events import WorkflowEvent as E
from tests.server.browser.conftest import open_page, problems, screenshot
from tests.server.conftest import memory_server

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
PROJECT = "/work/demo"


def finding(
    path: str, line: int, code: str, message: str, severity: str = "error"
) -> dict[str, Any]:
    return {"path": path, "line": line, "column": 5, "code": code, "message": message,
            "severity": severity, "tool": "t"}  # fmt: skip


async def hook_end(
    bus: WorkflowEventBus,
    job: str,
    hook: str,
    details: list[dict[str, Any]],
    total: int,
    **extra: Any,
) -> None:
    step = f"fast_hooks/{hook}"
    await bus.publish(
        E.HOOK_STARTED, job_id=job, step_id=step, data={"hook": hook, "phase": "fast_hooks"}
    )
    data = {"hook": hook, "phase": "fast_hooks", "status": "failed", "duration": 0.2,
            "exit_code": 1, "findings": total, "cached": False, "reason": None, "details": details,
            "details_truncated": total > len(details), "findings_total": total,
            "findings_truncated": total > len(details), "output_tail": ""}  # fmt: skip
    await bus.publish(E.HOOK_FAILED, job_id=job, step_id=step, data={**data, **extra})
    await bus.flush()


async def start(bus: WorkflowEventBus, job: str) -> None:
    await bus.publish(E.WORKFLOW_SESSION_INITIALIZING, job_id=job,
                      data={"workflow": "fast", "project": PROJECT})  # fmt: skip
    await bus.publish(E.FAST_HOOKS_STARTED, job_id=job, step_id="fast_hooks",
                      data={"phase": "fast_hooks"})  # fmt: skip
    await bus.flush()


@pytest.mark.timeout(120)
async def test_a_long_list_is_grouped_cut_with_its_count_searched_and_filtered(
    browser: Browser,
) -> None:
    many = [
        finding(f"src/m{i % 40:02d}.py", i, "E501", f"line too long ({i})") for i in range(1000)
    ]
    few = [finding("src/app.py", 3, "F401", "`os` imported but unused"),
           finding("src/app.py", 9, "W605", "invalid escape sequence", "warning")]  # fmt: skip
    async with memory_server() as served:
        bus = served.services.bus
        await start(bus, "big")
        await hook_end(bus, "big", "ruff-check", few, 2)
        await hook_end(bus, "big", "longlines", many, 1500)
        page = await open_page(browser, f"{served.http}/#/job/big")
        groups = page.locator(".hook-group")
        await expect(groups).to_have_count(2)
        longlines = page.locator('.hook-group[data-hook="longlines"]')
        await expect(longlines.locator(".more")).to_contain_text("… and 500 more")
        await expect(longlines.locator("details.file")).to_have_count(40)
        await expect(longlines.locator("details.file").first).not_to_have_attribute("open", "")
        await expect(page.locator("#finding-count")).to_have_text("1502")

        await page.fill("#findings-search", "imported but")
        await expect(page.locator(".finding:visible")).to_have_count(1)
        await expect(longlines).to_be_hidden()
        await page.fill("#findings-search", "")
        await page.select_option("#findings-severity", "warning")
        await expect(page.locator(".finding:visible")).to_have_count(1)
        await expect(page.locator(".finding:visible .code")).to_have_text("W605")
        await page.select_option("#findings-severity", "")
        await page.select_option("#findings-hook", "ruff-check")
        await expect(page.locator(".hook-group:visible")).to_have_count(1)
        await screenshot(page, "findings-filtered-desktop-light")
        assert problems(page) == []


@pytest.mark.timeout(120)
async def test_a_location_is_copied_and_linked_with_the_editor_scheme_kept(
    browser: Browser,
) -> None:
    async with memory_server() as served:
        bus = served.services.bus
        await start(bus, "loc")
        await hook_end(bus, "loc", "ruff-check", [finding("src/app.py", 3, "F401", "unused")], 1)
        page = await open_page(browser, f"{served.http}/#/job/loc")
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        location = page.locator(".finding .loc").first
        await expect(location).to_have_text("src/app.py:3:5")
        assert await location.get_attribute("href") is None  # no editor chosen yet

        await page.click(".finding button.copy")
        await expect(page.locator("#announcer")).to_have_text("Copied src/app.py:3:5")
        assert await page.evaluate("navigator.clipboard.readText()") == "src/app.py:3:5"

        await page.click(".settings summary")
        await page.fill("#editor-scheme", "vscode://file/{path}:{line}:{column}")
        await page.press("#editor-scheme", "Enter")
        await expect(location).to_have_attribute("href", "vscode://file/work/demo/src/app.py:3:5")
        await page.reload()
        await expect(page.locator(".finding .loc").first).to_have_attribute(
            "href", "vscode://file/work/demo/src/app.py:3:5"
        )
        assert problems(page) == []


@pytest.mark.timeout(120)
async def test_an_errored_hook_shows_its_reason_output_and_a_skipped_one_its_reason(
    browser: Browser,
) -> None:
    async with memory_server() as served:
        bus = served.services.bus
        await start(bus, "err")
        tail = "Traceback (most recent call last):\nRuntimeError: the linter broke"
        await hook_end(bus, "err", "mypy", [], 0, status="error", reason="mypy: crashed",
                       output_tail=tail)  # fmt: skip
        await hook_end(bus, "err", "codespell", [], 0, status="skipped", reason="not installed",
                       cached=False)  # fmt: skip
        await hook_end(bus, "err", "ruff-check", [finding("a.py", 1, "F401", "unused")], 1,
                       cached=True)  # fmt: skip
        page = await open_page(browser, f"{served.http}/#/job/err")
        mypy = page.locator('.hook-group[data-hook="mypy"]')
        await expect(mypy.locator(".reason")).to_have_text("mypy: crashed")
        await expect(mypy.locator("pre")).to_have_text(tail)
        await expect(mypy.locator("pre")).to_be_visible()  # an error opens its output
        await expect(page.locator('.row[data-unit="mypy"] .reason')).to_have_text("mypy: crashed")
        await expect(page.locator('.row[data-unit="codespell"] .reason')).to_have_text(
            "not installed"
        )
        await expect(page.locator('.row[data-unit="ruff-check"] .note')).to_have_text("cached")
        assert await page.locator(".hook-group").evaluate_all(
            "groups => groups.map(g => g.dataset.hook)"
        ) == ["mypy", "ruff-check", "codespell"]  # errors first, skipped last
        assert problems(page) == []
