"""A tool that errors leaves the end of its output in the hook's end event, in the result
document and in `spruce events`, so its reason can be read wherever the job is looked at."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from spruce.container import open_services
from spruce.hooks.base import OUTPUT_TAIL_BYTES, Finding
from spruce.hooks.tool import ToolHook
from spruce.report.result import build_result
from spruce.workflow.actions import JobContext, run_hook
from spruce.workflow.definitions import HookSpec
from spruce.workflow.process import ProcessResult
from tests.workflow.runner import bare_context

pytestmark = pytest.mark.anyio

# A tool that prints a lot, then crashes: its last words are on stderr.
CRASHING_TOOL: Final = """\
import sys
for number in range(400):
    print(f"progress line {number:04d} " + "." * 40)
sys.stderr.write("Traceback (most recent call last):\\nRuntimeError: the linter broke\\n")
sys.exit(2)
"""


def no_findings(result: ProcessResult, project: Path) -> list[Finding]:
    return []


def crashing_hook() -> ToolHook:
    spec = HookSpec(
        id="crashy", phase="fast_hooks", tool="crashy", description="", module="crashy",
        package="pytest",  # any installed distribution: the tool is the module above
    )  # fmt: skip
    return ToolHook(spec=spec, args=(), parse=no_findings, suffixes=(".py",))


async def test_an_erroring_tool_leaves_its_bounded_output_in_the_event_result_and_cli(
    tmp_path: Path,
) -> None:
    (tmp_path / "crashy.py").write_text(CRASHING_TOOL)
    (tmp_path / "app.py").write_text("x = 1\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    ctx = bare_context(tmp_path, ["app.py"], versions={"pytest": "1"}, scratch=scratch)
    url = f"sqlite://{tmp_path / 'events.db'}"
    async with open_services(store_url=url) as services:
        job = JobContext(bus=services.bus, job_id="j", hooks=ctx, plan={}, cache=None)
        result = await run_hook(job, "fast_hooks", crashing_hook())
        await services.bus.flush()
        events = await services.log.read("j", after=0)

    tail = events[-1].data["output_tail"]
    assert result.status == "error"
    assert tail.endswith("RuntimeError: the linter broke")
    assert "progress line 0399" in tail  # stdout too, before stderr
    assert "progress line 0000" not in tail  # the start was cut: the tail is bounded
    assert len(tail.encode()) <= OUTPUT_TAIL_BYTES
    document = build_result(events)
    assert document["phases"][0]["hooks"][0]["output_tail"] == tail

    printed = subprocess.run(
        [sys.executable, "-W", "error", "-m", "spruce", "events", "j", "--store", url],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "| RuntimeError: the linter broke" in printed


async def test_a_tool_that_printed_nothing_has_an_empty_tail(tmp_path: Path) -> None:
    (tmp_path / "crashy.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "app.py").write_text("x = 1\n")
    ctx = bare_context(tmp_path, ["app.py"], versions={"pytest": "1"}, scratch=tmp_path)
    async with open_services(store_url="memory://") as services:
        job = JobContext(bus=services.bus, job_id="j", hooks=ctx, plan={}, cache=None)
        await run_hook(job, "fast_hooks", crashing_hook())
        await services.bus.flush()
        events = await services.log.read("j", after=0)

    assert events[-1].data["status"] == "passed"
    assert events[-1].data["output_tail"] == ""
