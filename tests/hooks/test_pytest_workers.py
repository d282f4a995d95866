"""The test suite on several processes (`test_workers`): spruce's own shards and pytest-xdist
report exactly what one process reports, and one process stays the default."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Final

import pytest

from spruce.hooks import pytest_plugin
from spruce.hooks.pytest_workers import (
    choose_workers,
    estimate,
    load_times,
    merge_exit_codes,
    save_times,
)
from spruce.workflow.selection import merge_reports
from tests.workflow.runner import hook_ends, run_workflow

FILES: Final = {
    "tests/test_math.py": """\
import pytest


@pytest.mark.parametrize("n", range(12))
def test_even(n):
    assert n % 5 != 4, f"{n} is unlucky"


@pytest.mark.xfail(reason="not yet")
def test_later():
    assert False


def test_skipped():
    pytest.skip("not here")
""",
    "tests/test_text.py": """\
import pytest


@pytest.fixture
def broken():
    raise RuntimeError("no fixture today")


def test_upper():
    assert "a".upper() == "A"


def test_uses_broken(broken):
    pass


def test_lower():
    assert "A".lower() == "b"
""",
    "tests/test_skipped_module.py": (
        "import pytest\n\npytest.skip('whole module', allow_module_level=True)\n"
    ),
    "tests/test_more.py": "".join(f"def test_{n}():\n    assert {n} != 3\n\n\n" for n in range(9)),
}


def _project(root: Path, spruce: str) -> Path:
    for name, text in {**FILES, "pyproject.toml": spruce}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _settings(workers: object, *, xdist: bool = False) -> str:
    args = "[]" if xdist else '["-p", "no:xdist"]'
    return (
        "[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n"
        f"[tool.spruce]\ntest_workers = {json.dumps(workers)}\n"
        f"[tool.spruce.hooks.pytest]\nargs = {args}\n"
    )


async def _run(project: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """(nodeid -> outcome of every reported case, the pytest hook's end event data)."""
    _, events = await run_workflow(project, workflow="tests")
    cases = [e.data for e in events if e.event.value == "test_case_completed"]
    outcomes = {str(case["nodeid"]): str(case["outcome"]) for case in cases}
    assert len(outcomes) == len(cases), "a case was reported twice"
    return outcomes, dict(hook_ends(events)["tests/pytest"].data)


pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_shards_report_exactly_what_one_process_reports(tmp_path: Path) -> None:
    single, one = await _run(_project(tmp_path / "one", _settings(1)))
    sharded, three = await _run(_project(tmp_path / "three", _settings(3)))
    assert sharded == single
    assert {outcome for outcome in single.values()} == {
        "passed",
        "failed",
        "error",
        "skipped",
        "xfailed",
    }
    assert (one["workers"], three["workers"]) == (1, 3)
    assert (
        (one["status"], one["exit_code"]) == (three["status"], three["exit_code"]) == ("failed", 1)
    )
    assert sorted(one["details"], key=str) == sorted(three["details"], key=str)


async def test_a_collection_error_is_reported_once_with_shards(tmp_path: Path) -> None:
    projects = [_project(tmp_path / str(n), _settings(n)) for n in (1, 2)]
    for project in projects:
        (project / "tests" / "test_broken.py").write_text("import no_such_module\n")
    (single, one), (sharded, two) = [await _run(project) for project in projects]
    assert sharded == single and single["tests/test_broken.py"] == "error"
    assert (one["status"], one["exit_code"]) == (two["status"], two["exit_code"]) == ("failed", 2)


async def test_one_process_is_the_default(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", "")
    outcomes, end = await _run(project)
    assert end["workers"] == 1 and len(outcomes) == 27


@pytest.mark.skipif(not importlib.util.find_spec("xdist"), reason="needs pytest-xdist")
async def test_pytest_xdist_runs_the_workers_when_the_project_has_it(tmp_path: Path) -> None:
    single, _ = await _run(_project(tmp_path / "one", _settings(1)))
    workers, end = await _run(_project(tmp_path / "xdist", _settings(2, xdist=True)))
    assert workers == single and end["workers"] == 2
    assert end["status"] == "failed" and end["exit_code"] == 1


@pytest.mark.parametrize(
    ("codes", "merged"),
    [
        ([0, 0], 0),
        ([0, 1], 1),
        ([5, 0], 0),
        ([5, 1], 1),
        ([5, 5], 5),
        ([1, 2, 0], 2),
        ([3, 1], 3),
        ([0, None], None),
    ],
)
def test_the_shards_exit_codes_merge_into_one_run_s(codes: list[int | None], merged: int) -> None:
    assert merge_exit_codes(codes) == merged


def test_auto_uses_the_cpus_only_for_a_suite_long_enough_to_gain() -> None:
    assert choose_workers("auto", seconds=None, cpus=8) == 1  # never measured
    assert choose_workers("auto", seconds=0.8, cpus=8) == 1
    assert choose_workers("auto", seconds=4.0, cpus=2) == 2
    assert choose_workers("auto", seconds=600.0, cpus=8) == 8
    assert choose_workers(3, seconds=None, cpus=1) == 3  # an explicit count as given


def test_the_estimate_leaves_out_the_carried_tests(tmp_path: Path) -> None:
    from spruce.hooks.base import TestCase

    cases = [
        TestCase(
            nodeid=f"t/test_a.py::test_{n}",
            outcome="passed",
            duration=0.5,
            path="t/test_a.py",
            line=1,
            message=None,
        )
        for n in range(4)
    ]
    save_times(tmp_path, {}, cases)
    times = load_times(tmp_path)
    assert times == {"t/test_a.py": (2.0, 4)}
    whole = estimate(times, ())
    assert whole is not None and 2.0 <= whole < 2.01
    half = estimate(times, ["t/test_a.py::test_0", "t/test_a.py::test_1"])
    assert half is not None and 1.0 <= half < 1.01
    assert estimate({}, ()) is None


def test_every_test_lands_in_exactly_one_shard_whatever_the_order() -> None:
    nodeids = [f"tests/test_{n % 7}.py::test_{n}" for n in range(200)]
    costs = {"tests/test_0.py": 5.0, "tests/test_1.py": 0.01}
    shards = pytest_plugin.shard_of(nodeids, 3, costs)
    assert shards == pytest_plugin.shard_of(list(reversed(nodeids)), 3, costs)
    assert sorted(shards) == sorted(nodeids) and set(shards.values()) == {0, 1, 2}
    unknown = sum(costs.values()) / len(costs)  # a file not measured yet: the mean
    load = [
        sum(costs.get(n.split("::")[0], unknown) for n, s in shards.items() if s == i)
        for i in range(3)
    ]
    assert max(load) < 1.5 * min(load)


def test_the_processes_selection_reports_merge() -> None:
    merged = merge_reports(
        [
            {"carried": ["a"], "recorded": True, "files": {"x.py": 1}, "tests": {"t1": {}}},
            {"carried": ["a", "b"], "recorded": True, "files": {"y.py": 2}, "tests": {"t2": {}}},
        ]
    )
    assert merged == {
        "carried": ["a", "b"],
        "recorded": True,
        "files": {"x.py": 1, "y.py": 2},
        "tests": {"t1": {}, "t2": {}},
    }
    assert (
        merge_reports([{"carried": [], "recorded": True}, {"recorded": False}])["recorded"] is False
    )


@pytest.mark.parametrize("runner", ["shards", "xdist"])
async def test_selection_carries_and_records_across_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: str
) -> None:
    from tests.workflow import test_selection as selection

    if runner == "xdist" and not importlib.util.find_spec("xdist"):
        pytest.skip("needs pytest-xdist")
    monkeypatch.delenv("CI", raising=False)
    project = selection._project(tmp_path / "p")
    args = "[]" if runner == "xdist" else '["-p", "no:xdist"]'
    with (project / "pyproject.toml").open("a") as handle:
        handle.write(
            f"[tool.spruce]\ntest_workers = 2\n[tool.spruce.hooks.pytest]\nargs = {args}\n"
        )
    spruce = selection.Spruce(project, tmp_path / "cache")
    failing, first = await spruce.run()
    assert failing == set() and (first["selected"], first["carried"]) == (7, 0)
    undo = selection._edit(project / "app/calc.py", "return x * 3", "return x * 4")
    failing, end = await spruce.run()
    assert failing == selection._pytest_failures(project) == {"tests/test_calc.py::test_triple"}
    assert (end["selected"], end["carried"], end["carried_from"]) == (1, 6, "j1")
    undo()
    # The map the shards of that run recorded: test_triple failed there, so it runs again.
    selection._edit(project / "app/calc.py", "return x * 2", "return x + x")
    failing, end = await spruce.run()
    assert failing == set() and (end["selected"], end["carried"]) == (2, 5), end["selection"]
    assert end["passed"] == 7


def test_the_project_s_own_xdist_choice_stands() -> None:
    from spruce.hooks.pytest_workers import parallel_by_project, xdist_usable
    from spruce.workflow.toolenv import ToolEnv

    assert parallel_by_project(["-n", "4"]) and parallel_by_project(["-nauto"])
    assert parallel_by_project(["--numprocesses=2"]) and not parallel_by_project(["--no-header"])
    with_xdist = ToolEnv(python=Path("python"), versions={"pytest-xdist": "3.8.0"})
    assert xdist_usable(with_xdist, ["-q"])
    assert not xdist_usable(with_xdist, ["-p", "no:xdist"]) and not xdist_usable(
        with_xdist, ["-pno:xdist"]
    )
    assert not xdist_usable(ToolEnv(python=Path("python"), versions={}), [])


async def test_auto_spreads_a_long_suite_and_leaves_a_cpu_to_the_checks_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spruce.hooks import pytest as pytest_hook
    from spruce.hooks.pytest_workers import TIMES_FILE
    from spruce.workflow import actions
    from spruce.workflow.cache import project_state_dir

    monkeypatch.setattr(pytest_hook, "usable_cpus", lambda: 4)
    monkeypatch.setattr(actions, "usable_cpus", lambda: 4)
    ends: dict[str, object] = {}
    for workflow in ("tests", "standard_quality"):
        project = _project(tmp_path / workflow, _settings("auto"))
        cache = tmp_path / f"cache-{workflow}"
        _, events = await run_workflow(project, workflow=workflow, cache_dir=cache)
        assert hook_ends(events)["tests/pytest"].data["workers"] == 1  # never measured
        # As if the last run had measured 30 s of tests in one file.
        (project_state_dir(cache, project) / TIMES_FILE).write_text(
            json.dumps({"tests/test_more.py": [30.0, 9]})
        )
        (project / "tests" / "test_new.py").write_text("def test_new():\n    pass\n")
        _, events = await run_workflow(project, workflow=workflow, cache_dir=cache, all_tests=True)
        ends[workflow] = hook_ends(events)["tests/pytest"].data["workers"]
    assert ends == {"tests": 4, "standard_quality": 3}
