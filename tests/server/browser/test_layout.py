"""Every view of the dashboard over a real job, at 1280 and 390 px, in light and dark mode: no
horizontal overflow, no serious or critical axe-core violation, no failed request, and a
screenshot of each under tests/artifacts/dashboard for a person to look at."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.server.browser.conftest import (
    WIDTHS,
    open_page,
    overflow,
    problems,
    screenshot,
    serious_violations,
)
from tests.server.browser.projects import everything_project, run_job
from tests.server.conftest import Served

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
# A stats document (spruce.stats/1) with every kind of row, for a server without /api/stats.
STATS: dict[str, Any] = {
    "schema": "spruce.stats/1", "project": "/work/demo", "jobs": 37,
    "phases": [
        {"name": "fast_hooks", "runs": 37, "p50": 0.41, "p95": 0.9, "trend": 1.02},
        {"name": "comprehensive_hooks", "runs": 37, "p50": 2.3, "p95": 4.1, "trend": 1.4},
        {"name": "tests", "runs": 3, "p50": 6.2, "p95": 7.0, "trend": None},
    ],
    "hooks": [
        {"id": "mypy", "phase": "comprehensive_hooks", "runs": 37, "p50": 2.2, "p95": 4.0,
         "trend": 1.5, "queued_p50": 0.4, "cache_hit_rate": 0.3, "failure_rate": 0.1},
        {"id": "ruff-check", "phase": "fast_hooks", "runs": 37, "p50": 0.05, "p95": 0.11,
         "trend": 0.8, "queued_p50": 0.0, "cache_hit_rate": 0.9, "failure_rate": 0.0},
    ],
    "slowest_tests": [
        {"nodeid": "tests/test_io.py::test_big_file", "runs": 30, "p50": 1.2, "max": 3.4},
    ],
    "flaky_tests": [
        {"nodeid": "tests/test_net.py::test_retry", "passed": 5, "failed": 2, "last_job": "k3x9"},
    ],
}  # fmt: skip
STATUSES = ["passed", "failed", "error", "timeout", "skipped", "cancelled", "running", "fixed"]


async def timeline_problems(page: Page) -> list[str]:
    """Bars that leave their track, labels that run into the next row, and a suite drawn as
    starting after the checks it ran beside."""
    boxes: dict[str, Any] = await page.evaluate(BAR_BOXES)
    found = [f"{unit}'s bar leaves its track" for unit, box in boxes.items() if not box["inside"]]
    found += [
        f"{unit}'s name and badge run into the next row"
        for unit in await page.evaluate(LABEL_OVERLAPS)
    ]
    tests, checks = boxes["tests"]["left"], boxes["comprehensive_hooks"]["left"]
    if tests >= checks:
        found.append(f"the suite is drawn starting at {tests} px, after the checks at {checks} px")
    return found


async def audit(page: Page, name: str, found: list[str]) -> None:
    """Overflow and axe on the page as it is; the screenshot is written whatever is found."""
    path = await screenshot(page, name)
    print(f"screenshot: {path}")
    if extra := await overflow(page):
        found.append(f"{name}: {extra} px wider than the window")
    found.extend(f"{name}: {violation}" for violation in await serious_violations(page))


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_every_view_fits_both_widths_and_passes_axe_in_light_and_dark(
    browser: Browser, runner_server: tuple[Served, Path]
) -> None:
    served, root = runner_server
    job_id = await run_job(served, everything_project(root))
    async with httpx.AsyncClient(base_url=served.http) as client:
        stub = (await client.get("/api/stats")).status_code == 404  # the endpoint is not there yet
    print(f"insights drawn from {'a stub of /api/stats' if stub else 'the real /api/stats'}")
    found: list[str] = []
    for scheme in ("light", "dark"):
        for width in WIDTHS:
            tag = f"{width}-{scheme}"
            page = await open_page(browser, f"{served.http}/", width=width, scheme=scheme)
            await expect(page.locator(f'tr[data-job="{job_id}"] .status')).to_have_text("failed")
            await audit(page, f"list-{tag}", found)

            await page.goto(f"{served.http}/#/job/{job_id}")
            await expect(page.locator("#job-status")).to_have_text("failed")
            await expect(page.locator(".case .trace").first).to_contain_text("assert")
            await audit(page, f"job-{tag}", found)
            found.extend(f"job-{tag}: {problem}" for problem in await timeline_problems(page))

            await page.goto(f"{served.http}/#/job/no-such-job")
            await expect(page.locator("#job-status")).to_have_text("not found")
            await audit(page, f"unknown-{tag}", found)

            if stub:
                await page.route("**/api/stats*", lambda route: route.fulfill(json=STATS))
            await page.goto(f"{served.http}/#/insights")
            await expect(page.locator("#stats-state")).to_contain_text(re.compile(r"jobs? ·"))
            await expect(page.locator("#stats caption").first).to_have_text("Phases")
            await audit(page, f"insights-{tag}", found)
            found.extend(problems(page))
            await page.context.close()
    assert found == []


async def test_every_status_badge_reads_at_4_5_to_1_in_light_and_dark(browser: Browser) -> None:
    from tests.server.conftest import memory_server

    async with memory_server() as served:
        for scheme in ("light", "dark"):
            page = await open_page(browser, f"{served.http}/", scheme=scheme)
            await page.evaluate(
                """(statuses) => {
                    const box = document.createElement("p");
                    box.id = "all-badges";
                    for (const s of statuses) {
                        const b = document.createElement("span");
                        b.className = `status ${s}`; b.textContent = s; box.append(b, " ");
                    }
                    document.querySelector("main").prepend(box);
                }""",
                STATUSES,
            )
            await page.locator("#list-view").evaluate("node => { node.hidden = false; }")
            assert await serious_violations(page, rules=["color-contrast"]) == [], scheme
            ratios: dict[str, Any] = await page.evaluate(CONTRAST)
            assert set(ratios) == set(STATUSES)
            assert min(ratios.values()) >= 4.5, (scheme, ratios)
            await page.context.close()


# The WCAG contrast of each injected badge's text against its own background.
CONTRAST = """() => {
    const channel = (c) => {
        c /= 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    const lum = (rgb) => { const [r, g, b] = rgb.match(/\\d+/g).map(Number);
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b); };
    const out = {};
    for (const b of document.querySelectorAll("#all-badges .status")) {
        const style = getComputedStyle(b);
        const [hi, lo] = [lum(style.color), lum(style.backgroundColor)].sort((x, y) => y - x);
        out[b.textContent] = (hi + 0.05) / (lo + 0.05);
    }
    return out;
}"""


# Per timeline row: where its running bar starts, and whether every bar stays in the track.
BAR_BOXES = """() => {
    const out = {};
    for (const row of document.querySelectorAll(".row")) {
        const track = row.querySelector(".track").getBoundingClientRect();
        const bars = [...row.querySelectorAll(".seg:not([hidden])")]
            .map(b => b.getBoundingClientRect());
        out[row.dataset.unit] = {
            left: Math.round(row.querySelector(".seg:not(.queued)").getBoundingClientRect().left),
            inside: bars.every(b => b.left >= track.left - 1 && b.right <= track.right + 1),
        };
    }
    return out;
}"""

# Timeline rows whose label (name and badge) reaches into the next row's label.
LABEL_OVERLAPS = """() => {
    const labels = [...document.querySelectorAll(".row .label")];
    return labels.slice(0, -1).filter((label, i) => {
        const here = label.getBoundingClientRect(), next = labels[i + 1].getBoundingClientRect();
        return here.bottom > next.top + 0.5;
    }).map(label => label.closest(".row").dataset.unit);
}"""
