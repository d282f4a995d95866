"""MCP answers that say what happened and fit an agent's context, through the SDK's client:
strict arguments, honest cancels, bounded summaries, and every finding by cursor."""

from __future__ import annotations

import pytest
from mcp.types import CallToolResult

from tests.mcp.conftest import error_text, mcp_client, memory_services, structured
from tests.mcp.scripted import ScriptedRunner

pytestmark = pytest.mark.anyio

MANY = 3000
SUMMARY_BYTES = 32 * 1024


def size(result: CallToolResult) -> int:
    """Bytes of the whole tool result as it travels (structured content and text blocks)."""
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


async def test_unknown_arguments_are_a_tool_error_naming_them() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus)
        async with mcp_client(services, runner) as client:
            typo = await client.call_tool("run_workflow", {"project": "/p", "fixx": True})
            two = await client.call_tool("get_job", {"job_id": "j", "verbose": 1, "all": True})

    assert typo.is_error and two.is_error
    assert error_text(typo) == (
        "unknown argument for run_workflow: fixx "
        "(it takes: project, workflow, fix, no_cache, fail_fast, hooks, skip, files, changed)"
    )
    assert error_text(two).startswith("unknown arguments for get_job: all, verbose (it takes: ")
    assert runner.started == [], "a call with an unknown argument must not start a job"


async def test_run_workflow_passes_fix_no_cache_and_fail_fast_on() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus)
        async with mcp_client(services, runner) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            await client.call_tool("run_workflow", {"project": "/p"})
            await client.call_tool(
                "run_workflow", {"project": "/p", "fix": True, "no_cache": True, "fail_fast": True}
            )
            await runner.aclose()

    assert runner.options == [
        {"fix": False, "no_cache": False, "fail_fast": False},
        {"fix": True, "no_cache": True, "fail_fast": True},
    ]
    for tool in tools.values():
        assert tool.input_schema.get("additionalProperties") is False


async def test_cancelling_an_ended_job_says_it_was_not_cancelled_and_how_it_ended() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_s": 10})
            answer = structured(await client.call_tool("cancel_job", {"job_id": job_id}))

    assert answer == {"job_id": job_id, "cancelled": False, "status": "failed"}


class EndsByItselfRunner(ScriptedRunner):
    """A job that ends by itself while the cancel is on its way: the runner's cancel returns
    True (it stopped what it ran), but the job's end is its own."""

    async def cancel(self, job_id: str) -> bool:
        self.release()
        await self._tasks[job_id]
        return True


async def test_a_job_that_ends_by_itself_during_the_cancel_is_not_called_cancelled() -> None:
    async with memory_services() as services:
        runner = EndsByItselfRunner(services.bus, hold=True)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            answer = structured(await client.call_tool("cancel_job", {"job_id": job_id}))

    assert answer == {"job_id": job_id, "cancelled": False, "status": "failed"}


async def test_a_job_of_3000_findings_is_summarised_and_every_finding_paged_once() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, findings=MANY)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            waited = await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_s": 10})
            got = await client.call_tool("get_job", {"job_id": job_id})
            full = structured(
                await client.call_tool("get_job", {"job_id": job_id, "detail": "full"})
            )
            pages = []
            cursor = 0
            while True:
                page = structured(
                    await client.call_tool(
                        "get_findings", {"job_id": job_id, "after": cursor, "limit": 700}
                    )
                )
                if not page["findings"]:
                    break
                pages.append(page)
                cursor = page["next_cursor"]
            only_codespell = structured(
                await client.call_tool("get_findings", {"job_id": job_id, "hook": "codespell"})
            )

    summary = structured(waited)
    assert size(waited) <= SUMMARY_BYTES and size(got) <= SUMMARY_BYTES
    assert structured(got) == summary
    assert summary["detail"] == "summary" and summary["status"] == "failed"
    ruff = summary["phases"][0]["hooks"][0]
    assert (ruff["id"], ruff["findings_total"], ruff["findings_truncated"]) == (
        "ruff-check",
        MANY,
        True,
    )
    assert 0 < len(ruff["findings"]) < 10
    assert len(full["phases"][0]["hooks"][0]["findings"]) == MANY
    assert "detail" not in full

    assert [len(page["findings"]) for page in pages] == [700, 700, 700, 700, 200]
    found = [finding for page in pages for finding in page["findings"]]
    assert [f["index"] for f in found] == list(range(1, MANY + 1))
    assert [f["line"] for f in found] == list(range(2, MANY + 2))
    assert {(f["phase"], f["hook"], f["code"]) for f in found} == {
        ("fast_hooks", "ruff-check", "F401")
    }
    assert (pages[0]["stored"], pages[0]["reported"]) == (MANY, MANY)
    assert (only_codespell["findings"], only_codespell["stored"]) == ([], 0)


async def test_the_summary_lists_the_failed_cases_without_tracebacks() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, tests=4, failing_tests=2)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            summary = structured(
                await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_s": 10})
            )
            full = structured(
                await client.call_tool("get_job", {"job_id": job_id, "detail": "full"})
            )

    assert [c["nodeid"] for c in summary["tests"]["cases"]] == [
        "tests/test_x.py::test_1",
        "tests/test_x.py::test_2",
    ]
    assert all(c["longrepr"] is None for c in summary["tests"]["cases"])
    assert all(c["longrepr"] for c in full["tests"]["cases"])
    assert summary["tests"]["failed"] == 2 and summary["tests"]["cases"][0]["line"] == 11


async def test_findings_over_the_stored_bound_are_counted_as_reported_not_stored() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, findings=1000, reported=1500)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            summary = structured(
                await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_s": 10})
            )
            page = structured(
                await client.call_tool(
                    "get_findings",
                    {"job_id": job_id, "hook": "ruff-check", "after": 990, "limit": 1000},
                )
            )

    ruff = summary["phases"][0]["hooks"][0]
    assert (ruff["findings_total"], ruff["findings_truncated"]) == (1500, True)
    assert [f["index"] for f in page["findings"]] == list(range(991, 1001))
    assert (page["stored"], page["reported"], page["next_cursor"]) == (1000, 1500, 1000)
    assert page["hooks"] == [
        {"phase": "fast_hooks", "hook": "ruff-check", "reported": 1500, "stored": 1000}
    ]
