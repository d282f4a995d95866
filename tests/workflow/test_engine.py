"""The engine end to end with the real tools: event order, failures, cancel, timeout, fail-fast."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from spruce.events import Event
from tests.workflow.runner import (
    alive,
    cancel_once_sleeping,
    copy_sample,
    hook_ends,
    run_workflow,
    sleepy_sample,
    wait_for_pids,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def names(events: list[Event]) -> list[str]:
    return [event.event.value for event in events]


def assert_well_formed(events: list[Event]) -> None:
    """seq contiguous from 1, one end event and last, every started hook ended exactly once."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert names(events)[0] == "workflow_session_initializing"
    assert sum(e.is_end for e in events) == 1 and events[-1].is_end
    started = Counter(e.step_id for e in events if e.event.value == "hook_started")
    ended = Counter(
        e.step_id
        for e in events
        if e.step_id in started
        and e.event.value.startswith("hook_")
        and e.event.value != "hook_started"
    )
    assert started == ended


async def test_the_clean_project_passes_every_hook_in_order(tmp_path: Path) -> None:
    outcome, events = await run_workflow(copy_sample("clean", tmp_path))
    assert (outcome.status, outcome.exit_code) == ("passed", 0)
    assert_well_formed(events)
    order = names(events)
    assert order.index("fast_hooks_started") < order.index("fast_hooks_completed")
    assert order.index("fast_hooks_completed") < order.index("comprehensive_hooks_started")
    assert order.index("comprehensive_hooks_completed") < order.index("test_phase_started")
    assert order[-1] == "workflow_completed"
    cleaning = [e for e in events if e.step_id == "code_cleaning"]
    assert [e.event.value for e in cleaning] == ["code_cleaning_completed"]
    assert cleaning[0].data["status"] == "skipped" and cleaning[0].data["reason"]
    ends = hook_ends(events)
    ran = {"ruff-format", "ruff-check", "codespell", "mypy", "bandit", "vulture", "check-yaml"}
    for hook in ran:
        step = next(s for s in ends if s.endswith("/" + hook))
        assert ends[step].data["status"] == "passed", ends[step].data
    cases = [e for e in events if e.event.value == "test_case_completed"]
    assert [e.data["outcome"] for e in cases] == ["passed", "passed"]
    assert cases[-1].data["done"] == 2 and cases[-1].data["total"] == 2
    phase_end = next(e for e in events if e.event.value == "test_phase_completed")
    assert (phase_end.data["passed"], phase_end.data["total"]) == (2, 2)


async def test_a_failing_test_fails_its_phase_and_the_job(tmp_path: Path) -> None:
    outcome, events = await run_workflow(copy_sample("failing_test", tmp_path), workflow="tests")
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert_well_formed(events)
    order = names(events)
    assert "test_phase_failed" in order and order[-1] == "workflow_failed"
    failed = [e for e in events if e.data.get("outcome") == "failed"]
    assert [e.step_id for e in failed] == ["tests/tests/test_calc.py::test_add_wrong"]
    pytest_end = hook_ends(events)["tests/pytest"]
    assert pytest_end.event.value == "hook_failed"
    finding = pytest_end.data["details"][0]
    # The failing assert's line, not the def's; the message names the test.
    assert (finding["path"], finding["line"], finding["code"]) == (
        "tests/test_calc.py",
        9,
        "test-failed",
    )
    assert finding["message"].startswith("tests/test_calc.py::test_add_wrong: assert")


async def test_defects_fail_their_phase_events(tmp_path: Path) -> None:
    outcome, events = await run_workflow(
        copy_sample("type_error", tmp_path), workflow="comprehensive"
    )
    assert outcome.exit_code == 1
    order = names(events)
    for event in (
        "hook_failed",
        "hook_strategy_failed",
        "comprehensive_hooks_failed",
        "quality_phase_failed",
    ):
        assert event in order
    assert order[-1] == "workflow_failed"


async def test_an_invalid_config_fails_the_config_phase_with_exit_2(tmp_path: Path) -> None:
    project = copy_sample("clean", tmp_path)
    with (project / "pyproject.toml").open("a") as handle:
        handle.write("\n[tool.spruce.hooks.mypy]\ntimeout = 'soon'\n")
    outcome, events = await run_workflow(project)
    assert outcome.exit_code == 2 and outcome.status == "error"
    failed = next(e for e in events if e.event.value == "config_phase_failed")
    assert "tool.spruce.hooks.mypy.timeout" in failed.data["error"]
    assert names(events)[-1] == "workflow_failed" and events[-1].data["status"] == "error"


async def test_fail_fast_reports_the_rest_as_not_run(tmp_path: Path) -> None:
    outcome, events = await run_workflow(copy_sample("lint", tmp_path), fail_fast=True)
    assert outcome.exit_code == 1
    assert_well_formed(events)
    later = [e for e in events if e.step_id in ("comprehensive_hooks", "tests")]
    assert [e.data["status"] for e in later] == ["skipped", "skipped"]
    assert all("fail-fast" in e.data["reason"] for e in later)


async def test_cancelling_a_job_kills_its_processes_and_ends_it_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, pids_file = sleepy_sample(tmp_path, monkeypatch)
    pids, events = await cancel_once_sleeping(
        project, workflow="tests", job_id="sleepy", pids_file=pids_file
    )
    assert not [pid for pid in pids if alive(pid)]
    assert_well_formed(events)
    assert events[-1].event.value == "workflow_cancelled"
    assert events[-1].data["status"] == "cancelled" and events[-1].data["exit_code"] == 130
    assert hook_ends(events)["tests/pytest"].data["reason"] == "stop"


async def test_a_hook_timeout_kills_the_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_sample("sleepy", tmp_path)
    with (project / "pyproject.toml").open("a") as handle:
        handle.write("\n[tool.spruce.hooks.pytest]\ntimeout = 3\n")
    pids_file = tmp_path / "pids.txt"
    monkeypatch.setenv("SLEEPY_PIDS", str(pids_file))
    outcome, events = await run_workflow(project, workflow="tests")
    assert outcome.exit_code == 1
    assert_well_formed(events)
    end = hook_ends(events)["tests/pytest"]
    assert (end.event.value, end.data["status"]) == ("hook_failed", "timeout")
    assert not [pid for pid in await wait_for_pids(pids_file) if alive(pid)]


async def test_a_job_timeout_ends_the_job_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_sample("sleepy", tmp_path)
    with (project / "pyproject.toml").open("a") as handle:
        handle.write("\n[tool.spruce]\ntimeout = 3\n")
    monkeypatch.setenv("SLEEPY_PIDS", str(tmp_path / "pids.txt"))
    outcome, events = await run_workflow(project, workflow="tests")
    assert outcome.exit_code == 1 and "timed out" in (outcome.reason or "")
    assert_well_formed(events)
    assert events[-1].event.value == "workflow_failed"
    assert hook_ends(events)["tests/pytest"].data["status"] == "timeout"
    assert not [pid for pid in await wait_for_pids(tmp_path / "pids.txt") if alive(pid)]


async def test_fix_cleans_the_files_and_reports_them(tmp_path: Path) -> None:
    project = copy_sample("whitespace", tmp_path)
    _, events = await run_workflow(project, workflow="fast", fix=True)
    cleaning = next(e for e in events if e.event.value == "code_cleaning_completed")
    assert cleaning.data["changed_files"] == ["end.txt", "notes.txt"]
    assert (project / "notes.txt").read_text() == "hello\nworld\n"
    assert (project / "end.txt").read_text() == "no newline at the end\n"
    second, _ = await run_workflow(project, workflow="fast")
    assert second.exit_code == 0


async def test_a_file_name_that_is_not_utf8_does_not_break_the_hooks(tmp_path: Path) -> None:
    (tmp_path / os.fsdecode(b"n\xffme.py")).write_text("x = 1  \n")
    (tmp_path / "ok.py").write_text("x = 1  \n")
    outcome, events = await run_workflow(tmp_path, workflow="fast")
    assert_well_formed(events)
    assert outcome.status == "failed"
    ends = hook_ends(events)
    assert {e.data["status"] for e in ends.values()} <= {"passed", "failed", "skipped"}
    found = ends["fast_hooks/trailing-whitespace"].data["details"]
    assert [(f["path"], f["line"]) for f in found] == [("ok.py", 1)]


async def test_a_test_file_name_that_is_not_utf8_still_reports_the_test(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / os.fsdecode(b"test_\xff.py")).write_text("def test_a() -> None:\n    assert False\n")
    (tests / "test_b.py").write_text("def test_b() -> None:\n    assert True\n")
    outcome, events = await run_workflow(tmp_path, workflow="tests")
    assert_well_formed(events)
    end = hook_ends(events)["tests/pytest"]
    assert (outcome.status, end.data["status"]) == ("failed", "failed")
    assert [f["path"] for f in end.data["details"]] == ["tests/test_?.py"]


async def test_a_phase_whose_hooks_were_all_skipped_says_why(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no Python here\n")
    outcome, events = await run_workflow(tmp_path)
    assert outcome.status == "passed"
    skipped = {
        e.event.value: e.data["reason"]
        for e in events
        if e.event.value.endswith("_completed") and e.data.get("status") == "skipped"
    }
    assert skipped == {
        "code_cleaning_completed": "runs only with --fix",
        "hook_strategy_completed": "no matching files",
        "comprehensive_hooks_completed": "no matching files",
        "test_phase_completed": "no tests collected",
    }
