"""The test suite starts beside the read-only checks, yet its events keep the phase order.

A custom comprehensive hook here waits for a file that a test of the project writes: it can
only pass if the suite really ran while the comprehensive phase was still going.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from spruce.events import Event
from spruce.hooks.base import HookContext, Prepared
from spruce.hooks.pytest import PytestHook
from spruce.workflow import actions
from tests.workflow.runner import (
    alive,
    cancel_once_sleeping,
    copy_sample,
    hook_ends,
    run_workflow,
    sleepy_sample,
)
from tests.workflow.test_engine import assert_well_formed, names

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

WAIT_FOR_MARKER = """\
import os, sys, time
from pathlib import Path

marker = Path(os.environ["SPRUCE_MARKER"])
deadline = time.monotonic() + float(sys.argv[1])
while not marker.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
sys.exit(0 if marker.exists() else 1)
"""

MARKING_TEST = """\
import os
from pathlib import Path


def test_marks() -> None:
    Path(os.environ["SPRUCE_MARKER"]).touch()
"""


def _project_with_waiting_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, wait: float, extra: str = ""
) -> Path:
    """The clean sample, a test that writes the marker and a comprehensive check that waits
    up to `wait` seconds for it."""
    project = copy_sample("clean", tmp_path)
    (project / "tests" / "test_marker.py").write_text(MARKING_TEST)
    script = tmp_path / "wait_for_marker.py"
    script.write_text(WAIT_FOR_MARKER)
    monkeypatch.setenv("SPRUCE_MARKER", str(tmp_path / "marker"))
    with (project / "pyproject.toml").open("a") as handle:
        handle.write(
            f"\n[tool.spruce]\n{extra}\n"
            "[[tool.spruce.custom]]\n"
            'id = "waits-for-tests"\n'
            'phase = "comprehensive_hooks"\n'
            f'command = ["python", {str(script)!r}, "{wait}"]\n'
        )
    return project


def _phase_order_holds(events: list[Event]) -> None:
    order = names(events)
    assert order.index("comprehensive_hooks_completed") < order.index("test_phase_started")
    first_test_event = min(
        index
        for index, event in enumerate(events)
        if event.step_id is not None and event.step_id.startswith("tests")
    )
    assert first_test_event == order.index("test_phase_started")
    assert order.index("test_phase_completed") < order.index("quality_phase_completed")


async def test_the_suite_runs_beside_the_checks_but_publishes_in_its_phase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project_with_waiting_check(tmp_path, monkeypatch, wait=60)
    outcome, events = await run_workflow(project)
    assert (outcome.status, outcome.exit_code) == ("passed", 0)
    assert_well_formed(events)
    _phase_order_holds(events)
    ends = hook_ends(events)
    assert ends["comprehensive_hooks/waits-for-tests"].data["status"] == "passed"
    assert ends["tests/pytest"].data["status"] == "passed"
    started = next(e for e in events if e.event.value == "test_phase_started")
    assert started.data["began_early"] > 0
    cases = [e for e in events if e.event.value == "test_case_completed"]
    assert [e.data["done"] for e in cases] == [1, 2, 3]
    completed = next(e for e in events if e.event.value == "test_phase_completed")
    assert (completed.data["passed"], completed.data["total"]) == (3, 3)


async def test_a_suite_that_reports_past_the_held_limit_waits_for_its_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actions, "HELD_EVENTS_LIMIT", 2)  # hook_started and one test
    project = _project_with_waiting_check(tmp_path, monkeypatch, wait=60)
    outcome, events = await run_workflow(project)
    assert (outcome.status, outcome.exit_code) == ("passed", 0)
    assert_well_formed(events)
    _phase_order_holds(events)
    cases = [e for e in events if e.event.value == "test_case_completed"]
    assert [e.data["done"] for e in cases] == [1, 2, 3]
    assert hook_ends(events)["comprehensive_hooks/waits-for-tests"].data["status"] == "passed"


@pytest.mark.parametrize("why", ["start_tests_early = false", "one CPU slot"])
async def test_the_suite_waits_for_its_turn(
    why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if why == "one CPU slot":
        monkeypatch.setattr(actions, "usable_cpus", lambda: 1)
        monkeypatch.setattr(actions, "HELD_EVENTS_LIMIT", 2)
    settings = why if "=" in why else ""
    project = _project_with_waiting_check(tmp_path, monkeypatch, wait=1.5, extra=settings)
    with anyio.fail_after(60):
        outcome, events = await run_workflow(project)
    assert outcome.exit_code == 1
    assert_well_formed(events)
    ends = hook_ends(events)
    assert ends["comprehensive_hooks/waits-for-tests"].data["status"] == "failed"
    assert ends["tests/pytest"].data["status"] == "passed"
    started = next(e for e in events if e.event.value == "test_phase_started")
    assert "began_early" not in started.data


async def test_fail_fast_keeps_the_suite_for_its_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project_with_waiting_check(tmp_path, monkeypatch, wait=1.5)
    outcome, events = await run_workflow(project, fail_fast=True)
    assert outcome.exit_code == 1
    assert_well_formed(events)
    assert not (tmp_path / "marker").exists()  # no test ran
    assert "tests/pytest" not in {e.step_id for e in events}
    skipped = next(e for e in events if e.step_id == "tests")
    assert skipped.data["status"] == "skipped" and "fail-fast" in skipped.data["reason"]


async def test_cancelling_while_the_suite_runs_early_kills_it_unpublished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, pids_file = sleepy_sample(tmp_path, monkeypatch)
    with (project / "pyproject.toml").open("a") as handle:
        handle.write(
            "\n[[tool.spruce.custom]]\n"
            'id = "slow-check"\n'
            'phase = "comprehensive_hooks"\n'
            f'command = [{sys.executable!r}, "-c", "import time; time.sleep(120)"]\n'
        )
    pids, events = await cancel_once_sleeping(
        project, workflow="standard_quality", job_id="early", pids_file=pids_file
    )
    assert not [pid for pid in pids if alive(pid)]
    assert os.getpid() not in pids
    assert_well_formed(events)
    assert events[-1].event.value == "workflow_cancelled"
    # The suite never reached its turn: none of its events was published.
    assert not [e for e in events if (e.step_id or "").startswith("tests")]
    assert hook_ends(events)["comprehensive_hooks/slow-check"].data["reason"] == "stop"


def _with_slow_check(project: Path, settings: str = "") -> Path:
    """The project, plus a comprehensive check that takes two minutes."""
    with (project / "pyproject.toml").open("a") as handle:
        handle.write(
            f"\n[tool.spruce]\n{settings}\n"
            "[[tool.spruce.custom]]\n"
            'id = "slow-check"\n'
            'phase = "comprehensive_hooks"\n'
            f'command = [{sys.executable!r}, "-c", "import time; time.sleep(120)"]\n'
        )
    return project


async def test_a_job_timeout_ends_the_job_while_the_early_suite_waits_at_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actions, "HELD_EVENTS_LIMIT", 1)  # hook_started fills it
    project = _with_slow_check(copy_sample("clean", tmp_path), "timeout = 4")
    with anyio.fail_after(60):
        outcome, events = await run_workflow(project)
    assert outcome.exit_code == 1 and "timed out" in (outcome.reason or "")
    assert_well_formed(events)
    assert events[-1].event.value == "workflow_failed"
    assert not [e for e in events if (e.step_id or "").startswith("tests")]


async def test_a_test_hook_that_breaks_ends_itself_not_its_neighbours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: PytestHook, ctx: HookContext) -> Prepared | str:
        raise RuntimeError("boom")

    monkeypatch.setattr(PytestHook, "prepare", broken)
    outcome, events = await run_workflow(copy_sample("clean", tmp_path))
    assert outcome.exit_code == 1
    assert_well_formed(events)
    ends = hook_ends(events)
    assert ends["tests/pytest"].event.value == "hook_failed"
    assert ends["tests/pytest"].data["status"] == "error"
    assert "boom" in ends["tests/pytest"].data["reason"]
    others = {step: end.data["status"] for step, end in ends.items() if step != "tests/pytest"}
    assert set(others.values()) <= {"passed", "skipped"}, others
