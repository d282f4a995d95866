"""The test suite starts beside the read-only checks and publishes its events as they happen.

A custom comprehensive hook here waits for a file that a test of the project writes: it can
only pass if the suite really ran while the comprehensive phase was still going.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from spruce.events import Event
from spruce.hooks.base import HookContext, Prepared
from spruce.hooks.pytest import PytestHook
from spruce.report.result import build_result
from spruce.workflow import actions
from tests.workflow.runner import (
    alive,
    cancel_once_sleeping,
    copy_sample,
    hook_ends,
    run_workflow,
    sleepy_sample,
    wait_for_pids,
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


def _published_live(events: list[Event]) -> None:
    """Tests reported while the comprehensive phase still ran; each phase and hook ends once."""
    order = names(events)
    comprehensive_end = order.index("comprehensive_hooks_completed")
    cases = [i for i, e in enumerate(events) if e.event.value == "test_case_completed"]
    assert cases and cases[0] < comprehensive_end
    assert order.index("test_phase_started") < cases[0]
    assert order.index("test_phase_completed") < order.index("quality_phase_completed")
    phase_ends = Counter(
        e.step_id for e in events if e.event.value.endswith(("_completed", "_failed"))
    )
    assert phase_ends["tests"] == 1 and phase_ends["comprehensive_hooks"] == 2  # + strategy
    hook_ends_per_step = Counter(
        e.step_id for e in events if e.event.value in ("hook_completed", "hook_failed")
    )
    assert set(hook_ends_per_step.values()) == {1}


async def test_the_suite_runs_beside_the_checks_and_publishes_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project_with_waiting_check(tmp_path, monkeypatch, wait=60)
    outcome, events = await run_workflow(project)
    assert (outcome.status, outcome.exit_code) == ("passed", 0)
    assert_well_formed(events)
    _published_live(events)
    ends = hook_ends(events)
    assert ends["comprehensive_hooks/waits-for-tests"].data["status"] == "passed"
    assert ends["tests/pytest"].data["status"] == "passed"
    started = next(e for e in events if e.event.value == "test_phase_started")
    assert started.data["early"] is True
    cases = [e for e in events if e.event.value == "test_case_completed"]
    assert [e.data["done"] for e in cases] == [1, 2, 3]
    completed = next(e for e in events if e.event.value == "test_phase_completed")
    assert (completed.data["passed"], completed.data["total"]) == (3, 3)
    # The tests phase may start first; the result document keeps the workflow's order.
    result = build_result(events)
    assert [phase["name"] for phase in result["phases"]] == [
        "config",
        "fast_hooks",
        "code_cleaning",
        "comprehensive_hooks",
        "tests",
    ]


@pytest.mark.parametrize("why", ["start_tests_early = false", "one CPU slot"])
async def test_the_suite_waits_for_its_turn(
    why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if why == "one CPU slot":
        monkeypatch.setattr(actions, "usable_cpus", lambda: 1)
    settings = why if "=" in why else ""
    project = _project_with_waiting_check(tmp_path, monkeypatch, wait=1.5, extra=settings)
    with anyio.fail_after(60):
        outcome, events = await run_workflow(project)
    assert outcome.exit_code == 1
    assert_well_formed(events)
    ends = hook_ends(events)
    assert ends["comprehensive_hooks/waits-for-tests"].data["status"] == "failed"
    assert ends["tests/pytest"].data["status"] == "passed"
    order = names(events)
    assert order.index("comprehensive_hooks_failed") < order.index("test_phase_started")
    started = next(e for e in events if e.event.value == "test_phase_started")
    assert "early" not in started.data


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


def _ends_of(events: list[Event], step: str) -> list[str]:
    return [
        e.event.value
        for e in events
        if e.step_id == step and e.event.value.endswith(("_completed", "_failed", "_skipped"))
    ]


async def test_cancelling_while_the_suite_runs_early_ends_its_phase_once(
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
    # The suite had started: its phase and its hook each end exactly once, as cancelled.
    assert _ends_of(events, "tests") == ["test_phase_failed"]
    tests_end = next(e for e in events if e.event.value == "test_phase_failed")
    assert tests_end.data["status"] == "cancelled"
    assert _ends_of(events, "tests/pytest") == ["hook_skipped"]
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


async def test_a_job_timeout_while_the_suite_ran_early_ends_each_phase_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, pids_file = sleepy_sample(tmp_path, monkeypatch)
    _with_slow_check(project, "timeout = 4")
    with anyio.fail_after(60):
        outcome, events = await run_workflow(project)
    assert not [pid for pid in (await wait_for_pids(pids_file)) if alive(pid)]
    assert outcome.exit_code == 1 and "timed out" in (outcome.reason or "")
    assert_well_formed(events)
    assert events[-1].event.value == "workflow_failed"
    assert _ends_of(events, "tests") == ["test_phase_failed"]
    assert _ends_of(events, "comprehensive_hooks")[-1] == "comprehensive_hooks_failed"
    assert hook_ends(events)["tests/pytest"].data["status"] == "timeout"


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
