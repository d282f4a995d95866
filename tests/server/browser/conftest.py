"""Real headless Chromium for the dashboard's tests, axe-core to audit pages, and a folder
for the screenshots a person should look at (tests/artifacts/dashboard, not versioned)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

HERE: Final = Path(__file__).parent
AXE: Final = HERE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS: Final = HERE.parents[1] / "artifacts" / "dashboard"
CHROMIUM_ARGS: Final = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
WIDTHS: Final = {"desktop": (1280, 800), "phone": (390, 844)}
expect.set_options(timeout=60_000)  # real jobs on a busy machine: wait, never assert a time


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def open_page(
    browser: Browser,
    url: str,
    *,
    width: str = "desktop",
    scheme: str = "light",
    motion: str = "reduce",
) -> Page:
    """A fresh page (its own context) at `url`, recording page errors and failed requests."""
    w, h = WIDTHS[width]
    context = await browser.new_context(
        viewport={"width": w, "height": h},
        color_scheme=scheme,  # type: ignore[arg-type]
        reduced_motion=motion,  # type: ignore[arg-type]
    )
    page = await context.new_page()
    page.set_default_timeout(60_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    await page.goto(url)
    page.problems = problems  # type: ignore[attr-defined]
    return page


def problems(page: Page) -> list[str]:
    """Page errors and HTTP errors (404 favicon…) the page met so far."""
    found: list[str] = page.problems  # type: ignore[attr-defined]
    return found


async def overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0: no horizontal scrolling)."""
    width: int = await page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )
    return max(width, 0)


async def serious_violations(page: Page, *, rules: list[str] | None = None) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing: run `npm ci` in {HERE} (as .ci/run does)")
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = {"type": "rule", "values": rules}
    result = await page.evaluate("(options) => axe.run(document, options)", options)
    return [
        f"{v['id']} ({v['impact']}): {json.dumps([n['target'] for n in v['nodes']][:5])}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG under tests/artifacts/dashboard, for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
