"""The MCP tools over the real job runner and workflow engine, through the in-process client."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import pytest

from spruce.jobs import JobRunner
from tests.mcp.conftest import (
    RESOURCES,
    error_text,
    mcp_client,
    memory_services,
    processes_in,
    structured,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _wait_for_processes(project: Path, count: int) -> None:
    with anyio.fail_after(60):
        while len(processes_in(project)) < count:
            await anyio.sleep(0.1)


async def test_cancel_job_ends_a_running_job_as_cancelled_leaving_no_process(
    tmp_path: Path,
) -> None:
    # Its test sleeps for minutes in pytest and in a grandchild process of its own.
    project = Path(shutil.copytree(RESOURCES / "projects" / "sleepy", tmp_path / "sleepy"))
    async with memory_services() as services:
        runner = JobRunner(services, roots=[tmp_path])
        try:
            async with mcp_client(services, runner, roots=[tmp_path]) as client:
                started = await client.call_tool(
                    "run_workflow", {"project": str(project), "workflow": "tests"}
                )
                job_id = structured(started)["job_id"]
                await _wait_for_processes(project, 2)
                outcome = structured(await client.call_tool("cancel_job", {"job_id": job_id}))
                page = structured(
                    await client.call_tool("get_job_events", {"job_id": job_id, "limit": 1000})
                )
                left = processes_in(project)
        finally:
            await runner.aclose()

    assert outcome == {"job_id": job_id, "cancelled": True, "status": "cancelled"}
    ends = [event["event"] for event in page["events"] if event["step_id"] is None][-1:]
    assert ends == ["workflow_cancelled"]
    assert left == []


async def test_list_hooks_shows_every_builtin_hook_and_the_projects_choices(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "p"\nversion = "0"\n\n[tool.spruce.hooks.vulture]\nenabled = false\n'
    )
    async with memory_services() as services:
        runner = JobRunner(services, roots=[tmp_path])
        async with mcp_client(services, runner, roots=[tmp_path]) as client:
            everywhere = structured(await client.call_tool("list_hooks", {}))["hooks"]
            here = structured(await client.call_tool("list_hooks", {"project": str(project)}))
            outside = await client.call_tool("list_hooks", {"project": "/"})

    ids = {(hook["phase"], hook["id"]) for hook in everywhere}
    assert {
        ("fast_hooks", "ruff-check"),
        ("comprehensive_hooks", "mypy"),
        ("tests", "pytest"),
    } <= ids
    enabled = {
        hook["id"]: hook["enabled"] for hook in here["hooks"] if hook["phase"] != "code_cleaning"
    }
    assert enabled["vulture"] is False and enabled["mypy"] is True
    assert outside.is_error and "outside the allowed roots" in error_text(outside)


async def test_run_workflow_takes_hooks_skip_files_and_changed(tmp_path: Path) -> None:
    from tests.cli.git_support import git, git_sample

    project = git_sample("lint", tmp_path)  # tool.py: an unused import
    (project / "other.py").write_text("import sys\n")
    async with memory_services() as services:
        runner = JobRunner(services, roots=[tmp_path])
        try:
            async with mcp_client(services, runner, roots=[tmp_path]) as client:

                async def run(**arguments: object) -> dict[str, dict[str, object]]:
                    started = await client.call_tool(
                        "run_workflow", {"project": str(project), "workflow": "fast", **arguments}
                    )
                    job_id = structured(started)["job_id"]
                    done = await client.call_tool(
                        "wait_for_job", {"job_id": job_id, "timeout_s": 50}
                    )
                    document = structured(done)
                    return {h["id"]: h for p in document["phases"] for h in p["hooks"]}

                only = await run(hooks=["ruff-check"], files=["other.py"])
                changed = await run(changed="HEAD", skip=["codespell"])
                unknown = await client.call_tool(
                    "run_workflow", {"project": str(project), "skip": ["ruff-chek"]}
                )
        finally:
            await runner.aclose()
    assert [f["path"] for f in only["ruff-check"]["findings"]] == ["other.py"]  # type: ignore[attr-defined]
    assert only["ruff-format"]["reason"] == "not chosen by --hook"
    assert [f["path"] for f in changed["ruff-check"]["findings"]] == ["other.py"]  # type: ignore[attr-defined]
    assert changed["codespell"]["reason"] == "skipped by --skip"
    assert "unknown hook id 'ruff-chek'" in error_text(unknown)
    assert git(project, "status", "--short").split() == ["??", "other.py"]


async def test_wait_for_job_says_what_test_selection_ran_and_carried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.workflow.runner import two_module_project

    monkeypatch.delenv("CI", raising=False)  # selection runs as on a developer's machine
    monkeypatch.setenv("SPRUCE_CACHE_DIR", str(tmp_path / "cache"))
    project, edit = two_module_project(tmp_path)
    async with memory_services() as services:
        runner = JobRunner(services, roots=[tmp_path])
        try:
            async with mcp_client(services, runner, roots=[tmp_path]) as client:

                async def run() -> tuple[str, dict[str, object]]:
                    started = await client.call_tool(
                        "run_workflow", {"project": str(project), "workflow": "tests"}
                    )
                    job_id = str(structured(started)["job_id"])
                    done = await client.call_tool(
                        "wait_for_job", {"job_id": job_id, "timeout_s": 50}
                    )
                    return job_id, structured(done)["tests"]

                first, everything = await run()
                edit()
                _, selected = await run()
        finally:
            await runner.aclose()
    assert (everything["selected"], everything["carried"]) == (3, 0)
    assert (selected["selected"], selected["carried"], selected["carried_from"]) == (1, 2, first)
    assert selected["selection"] == f"1 of 3 tests run; 2 carried from job {first}"
    assert (selected["total"], selected["passed"]) == (3, 3)
