"""The MCP tools through the SDK's in-process client, over a scripted job runner."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import jsonschema  # type: ignore[import-untyped]
import pytest
from mcp.types import TextResourceContents

from spruce.events import WorkflowEvent
from spruce.jobs import JobRunner
from spruce.workflow.definitions import WORKFLOWS
from tests.mcp.conftest import (
    error_text,
    findings_of,
    mcp_client,
    memory_services,
    structured,
)
from tests.mcp.scripted import ScriptedRunner

pytestmark = pytest.mark.anyio

TOOLS = {
    "run_workflow",
    "get_job",
    "wait_for_job",
    "get_job_events",
    "list_jobs",
    "cancel_job",
    "list_hooks",
    "get_findings",
}
READERS = {"get_job", "wait_for_job", "get_job_events", "list_jobs", "list_hooks", "get_findings"}


async def test_tools_have_typed_parameters_and_object_output_schemas() -> None:
    async with (
        memory_services() as services,
        mcp_client(services, ScriptedRunner(services.bus)) as client,
    ):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(tools) == TOOLS
    run = tools["run_workflow"].input_schema
    assert run["properties"]["project"]["type"] == "string"
    assert run["required"] == ["project"]
    assert run["properties"]["workflow"]["default"] == "standard_quality"
    assert run["properties"]["workflow"]["enum"] == list(WORKFLOWS)
    wait = tools["wait_for_job"].input_schema["properties"]["timeout_s"]
    assert wait["maximum"] == 50
    assert tools["get_job_events"].input_schema["properties"]["after"]["type"] == "integer"
    for tool in tools.values():
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        assert tool.description
    events_schema = tools["get_job_events"].output_schema
    assert events_schema is not None
    assert set(events_schema["required"]) >= {"events", "next_cursor"}


async def test_readers_carry_the_read_only_hint_and_writers_do_not() -> None:
    async with (
        memory_services() as services,
        mcp_client(services, ScriptedRunner(services.bus)) as client,
    ):
        tools = (await client.list_tools()).tools

    hints = {tool.name: tool.annotations and tool.annotations.read_only_hint for tool in tools}
    assert {name for name, read_only in hints.items() if read_only} == READERS


async def test_run_workflow_returns_the_job_id_before_the_job_ends() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, hold=True)
        async with mcp_client(services, runner) as client:
            started = structured(await client.call_tool("run_workflow", {"project": "/p"}))
            document = structured(await client.call_tool("get_job", {"job_id": started["job_id"]}))
            runner.release()
            await runner.aclose()

    assert started == {"job_id": runner.started[0]}
    assert document["status"] == "running"
    assert document["job_id"] == started["job_id"]


async def test_wait_for_job_returns_the_result_document_with_findings() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, tests=3)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            document = structured(
                await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_s": 10})
            )

    assert document["schema"] == "spruce.result/1"
    assert document["status"] == "failed"
    assert document["tests"]["passed"] == 3
    [(phase, hook, finding)] = findings_of(document)
    assert (phase, hook, finding["code"], finding["line"]) == (
        "fast_hooks",
        "ruff-check",
        "F401",
        2,
    )


async def test_wait_for_job_says_running_when_its_timeout_passes_first() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, hold=True)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            with anyio.fail_after(5):
                document = structured(
                    await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_s": 0.3})
                )
            await runner.aclose()

    assert document["status"] == "running"


async def test_progress_notifications_grow_while_the_job_runs() -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, tests=6, pause=0.02)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            result = await client.call_tool(
                "wait_for_job",
                {"job_id": job_id, "timeout_s": 20},
                progress_callback=on_progress,
            )

    assert structured(result)["status"] == "failed"
    values = [progress for progress, _, _ in seen]
    assert len(values) >= 4, seen
    assert values == sorted(set(values)), "progress must strictly increase"
    hooks_and_tests = 3 + 6
    assert seen[-1][:2] == (hooks_and_tests, hooks_and_tests)
    assert seen[-1][2] == "hooks 3/3, tests 6/6"


async def test_event_pages_return_every_event_once_in_order_while_the_job_runs() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, tests=120, pause=0.001)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            seqs: list[int] = []
            cursor = 0
            with anyio.fail_after(60):
                while True:
                    page = structured(
                        await client.call_tool(
                            "get_job_events",
                            {"job_id": job_id, "after": cursor, "wait_s": 5, "limit": 7},
                        )
                    )
                    seqs += [event["seq"] for event in page["events"]]
                    cursor = page["next_cursor"]
                    if page["status"] != "running" and not page["events"]:
                        break
            stored = await services.log.read(job_id, after=0, limit=10_000)

    assert seqs == [event.seq for event in stored] == list(range(1, len(stored) + 1))
    assert stored[-1].event is WorkflowEvent.WORKFLOW_FAILED
    assert len(stored) > 7 * 10, "the job must span many pages"


async def test_event_pages_carry_the_wire_fields_of_each_event() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, tests=1)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_s": 10})
            page = structured(await client.call_tool("get_job_events", {"job_id": job_id}))

    first = page["events"][0]
    assert set(first) == {"event", "job_id", "seq", "step_id", "timestamp", "data"}
    assert first["event"] == "workflow_session_initializing"
    assert first["data"]["project"] == "/p"
    assert page["next_cursor"] == page["events"][-1]["seq"]
    assert page["status"] == "failed"


async def test_unknown_job_is_a_one_sentence_tool_error() -> None:
    async with (
        memory_services() as services,
        mcp_client(services, ScriptedRunner(services.bus)) as client,
    ):
        results = [
            await client.call_tool(name, {"job_id": "no-such-job"})
            for name in ("get_job", "wait_for_job", "get_job_events", "cancel_job")
        ]

    for result in results:
        assert result.is_error
        text = error_text(result)
        assert "no job 'no-such-job'" in text
        assert "\n" not in text and "Traceback" not in text


async def test_project_outside_the_roots_is_a_tool_error(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    elsewhere = tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    async with memory_services() as services:
        runner = JobRunner(services, roots=[allowed])
        async with mcp_client(services, runner, roots=[allowed]) as client:
            result = await client.call_tool("run_workflow", {"project": str(elsewhere)})
            jobs = structured(await client.call_tool("list_jobs", {}))

    assert result.is_error
    assert "outside the allowed roots" in error_text(result)
    assert "\n" not in error_text(result)
    assert jobs == {"jobs": []}


async def test_unknown_workflow_is_a_tool_error_naming_the_choices(tmp_path: Path) -> None:
    async with memory_services() as services:
        runner = JobRunner(services, roots=[tmp_path])
        async with mcp_client(services, runner) as client:
            result = await client.call_tool(
                "run_workflow", {"project": str(tmp_path), "workflow": "nightly"}
            )

    assert result.is_error
    text = error_text(result)
    assert "unknown workflow 'nightly'" in text and "standard_quality" in text
    assert "\n" not in text


async def test_cancel_job_ends_a_running_job_as_cancelled() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, hold=True)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            outcome = structured(await client.call_tool("cancel_job", {"job_id": job_id}))
            again = structured(await client.call_tool("cancel_job", {"job_id": job_id}))
            document = structured(await client.call_tool("get_job", {"job_id": job_id}))

    assert outcome == {"job_id": job_id, "cancelled": True, "status": "cancelled"}
    assert again == {"job_id": job_id, "cancelled": False, "status": "cancelled"}
    assert document["status"] == "cancelled"


async def test_a_job_of_another_process_is_listed_but_not_cancelled_here() -> None:
    async with memory_services() as services:
        # Published straight onto the log, as a `spruce run` in a terminal would.
        await services.bus.publish(
            WorkflowEvent.WORKFLOW_SESSION_INITIALIZING,
            job_id="terminal-1",
            data={"workflow": "fast", "project": "/p"},
        )
        await services.bus.flush()
        async with mcp_client(services, ScriptedRunner(services.bus)) as client:
            jobs = structured(await client.call_tool("list_jobs", {}))["jobs"]
            result = await client.call_tool("cancel_job", {"job_id": "terminal-1"})

    assert [(job["job_id"], job["status"], job["workflow"]) for job in jobs] == [
        ("terminal-1", "running", "fast")
    ]
    assert result.is_error
    assert "another process" in error_text(result)


async def test_each_job_is_a_resource_holding_its_result_document() -> None:
    async with memory_services() as services:
        runner = ScriptedRunner(services.bus, tests=2)
        async with mcp_client(services, runner) as client:
            job_id = structured(await client.call_tool("run_workflow", {"project": "/p"}))["job_id"]
            document = structured(
                await client.call_tool(
                    "wait_for_job", {"job_id": job_id, "timeout_s": 10, "detail": "full"}
                )
            )
            templates = (await client.list_resource_templates()).resource_templates
            contents = (await client.read_resource(f"spruce://jobs/{job_id}")).contents

    assert [template.uri_template for template in templates] == ["spruce://jobs/{job_id}"]
    [content] = contents
    assert content.mime_type == "application/json"
    assert isinstance(content, TextResourceContents)
    assert json.loads(content.text) == document


async def test_bad_arguments_are_one_sentence_naming_the_argument() -> None:
    async with (
        memory_services() as services,
        mcp_client(services, ScriptedRunner(services.bus)) as client,
    ):
        too_long = await client.call_tool("wait_for_job", {"job_id": "j", "timeout_s": 120})
        missing = await client.call_tool("get_job", {})

    assert too_long.is_error and missing.is_error
    assert error_text(too_long) == (
        "invalid arguments for wait_for_job: timeout_s: input should be less than or equal to 50"
    )
    assert error_text(missing) == "invalid arguments for get_job: job_id: field required"
