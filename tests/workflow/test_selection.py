"""Test selection never hides a failure: after each kind of change, spruce reports exactly the
failing tests a full pytest run reports, and once the change is undone no stale failure stays.
Real pytest runs; the map survives a killed run or is ignored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

from spruce.events import Event
from spruce.workflow.cache import ResultCache
from spruce.workflow.files import FileSet
from spruce.workflow.selection import SelectionSettings, Selector
from tests.workflow.runner import run_workflow

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(autouse=True)
def outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Selection is off under CI=true (its own test sets it): these tests run as a developer's
    machine does, also when the suite itself runs in CI."""
    monkeypatch.delenv("CI", raising=False)


CALC: Final = """\
LIMIT = 10


class Box:
    size = 3

    def area(self):
        return self.size * self.size


def double(x):
    return x * 2


def triple(x):
    return x * 3
"""
TESTS: Final = """\
from app.calc import LIMIT, Box, double, triple


def test_double():
    assert double(2) == 4


def test_triple():
    assert triple(2) == 6


def test_limit():
    assert LIMIT == 10


def test_box():
    assert Box().area() == 9


def test_box_size():
    assert Box.size == 3


def test_factor(factor):
    assert factor == 1
"""
DATA_TEST: Final = """\
import json
import pathlib


def test_data():
    assert json.loads((pathlib.Path(__file__).parent / "data.json").read_text())["ok"]
"""
DIST_TEST: Final = """\
import tinydist


def test_dist():
    assert tinydist.VERSION == "1.0"
"""
CONFTEST: Final = "import pytest\n\n\n@pytest.fixture\ndef factor():\n    return 1\n"


def write_project(root: Path, sources: dict[str, str]) -> Path:
    """A project of package `app` and tests under `tests/`, with pytest's cache off."""
    files = {
        "pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n",
        "app/__init__.py": "",
        "tests/__init__.py": "",
        **sources,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _project(root: Path) -> Path:
    return write_project(
        root,
        {
            "app/calc.py": CALC,
            "tests/conftest.py": CONFTEST,
            "tests/test_calc.py": TESTS,
            "tests/test_data.py": DATA_TEST,
            "tests/data.json": '{"ok": true}\n',
        },
    )


def _pytest_failures(project: Path, python: str = sys.executable) -> set[str]:
    """The failing and erroring nodeids of a plain, full pytest run."""
    run = subprocess.run(
        [python, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return {
        line.split(" ", 1)[1].split(" - ")[0]
        for line in run.stdout.splitlines()
        if line.startswith(("FAILED ", "ERROR "))
    }


def _failures(events: list[Event]) -> set[str]:
    return {
        str(e.data["nodeid"])
        for e in events
        if e.event.value == "test_case_completed" and e.data["outcome"] in ("failed", "error")
    }


def _tests_end(events: list[Event]) -> dict[str, Any]:
    ends = [e for e in events if e.event.value in ("test_phase_completed", "test_phase_failed")]
    return dict(ends[-1].data)


class Spruce:
    """Runs the tests workflow of one project with one cache, numbering its jobs."""

    def __init__(self, project: Path, cache: Path) -> None:
        self.project, self.cache, self.jobs = project, cache, 0

    async def run(self, **options: Any) -> tuple[set[str], dict[str, Any]]:
        self.jobs += 1
        _, events = await run_workflow(
            self.project, workflow="tests", cache_dir=self.cache, job_id=f"j{self.jobs}", **options
        )
        return _failures(events), _tests_end(events)


def _edit(path: Path, old: str, new: str) -> Callable[[], object]:
    """Replace `old` by `new` in a file; the returned function undoes it."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return lambda: path.write_text(text)


CHANGES: Final[dict[str, tuple[str, str, str, set[str]]]] = {
    "function body": ("app/calc.py", "return x * 3", "return x * 4", {"test_triple"}),
    "module constant": ("app/calc.py", "LIMIT = 10", "LIMIT = 11", {"test_limit"}),
    "class attribute": ("app/calc.py", "size = 3", "size = 4", {"test_box", "test_box_size"}),
    "conftest": ("tests/conftest.py", "return 1", "return 2", {"test_factor"}),
    "data file": ("tests/data.json", "true", "false", {"test_data"}),
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_change_reports_exactly_the_failures_of_a_full_run(
    tmp_path: Path, change: str
) -> None:
    project = _project(tmp_path / "p")
    spruce = Spruce(project, tmp_path / "cache")
    failing, first = await spruce.run()
    assert failing == set() and first["selected"] == 7 and first["carried"] == 0
    path, old, new, broken = CHANGES[change]
    undo = _edit(project / path, old, new)
    failing, end = await spruce.run()
    expected = _pytest_failures(project)
    assert {nodeid.rpartition("::")[2] for nodeid in expected} == broken
    assert failing == expected
    assert end["total"] == 7 and end["failed"] == len(broken)
    if change == "function body":  # only what executed triple(), and nothing else, ran
        assert (end["selected"], end["carried"], end["carried_from"]) == (1, 6, "j1")
        assert end["selection"] == "1 of 7 tests run; 6 carried from job j1"
    else:  # what selection cannot see through runs the whole suite
        assert (end["selected"], end["carried"]) == (7, 0), end["selection"]
    undo()
    failing, end = await spruce.run()
    assert failing == set() == _pytest_failures(project)
    assert end["failed"] == 0 and end["passed"] == 7


async def test_a_new_failing_test_is_run_and_reported(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    spruce = Spruce(project, tmp_path / "cache")
    await spruce.run()
    new_test = project / "tests" / "test_new.py"
    new_test.write_text("def test_new():\n    assert False\n")
    failing, end = await spruce.run()
    assert failing == _pytest_failures(project) == {"tests/test_new.py::test_new"}
    assert (end["selected"], end["carried"]) == (1, 7)
    new_test.write_text("def test_new():\n    assert True\n")
    failing, end = await spruce.run()
    assert failing == set() and end["passed"] == 8


def _link_spruce_packages(venv: Path) -> None:
    """Let a bare venv import spruce's pytest, and list pytest as installed."""
    site = next(venv.glob("lib/python3*/site-packages"))
    own_site = Path(pytest.__file__).resolve().parent.parent
    (site / "spruce_test_tools.pth").write_text(str(own_site) + "\n")
    for dist_info in own_site.glob("pytest-*.dist-info"):
        (site / dist_info.name).symlink_to(dist_info)


async def test_an_upgraded_distribution_runs_the_whole_suite(tmp_path: Path) -> None:
    from tests.workflow.test_cache_key import _pip_install, _venv, _wheel

    project = _project(tmp_path / "p")
    (project / "tests" / "test_dist.py").write_text(DIST_TEST)
    python = _venv(project, getattr(sys, "_base_executable", sys.executable))
    _link_spruce_packages(project / ".venv")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _pip_install(python, _wheel(wheels, "1.0"))
    spruce = Spruce(project, tmp_path / "cache")
    failing, first = await spruce.run()
    assert failing == set() and first["selected"] == 8
    _pip_install(python, _wheel(wheels, "2.0"))
    failing, end = await spruce.run()
    assert failing == _pytest_failures(project, str(python)) == {"tests/test_dist.py::test_dist"}
    assert end["carried"] == 0
    _pip_install(python, _wheel(wheels, "1.0"))
    failing, end = await spruce.run()
    assert failing == set() == _pytest_failures(project, str(python))


async def test_all_tests_and_no_cache_run_the_whole_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path / "p")
    spruce = Spruce(project, tmp_path / "cache")
    await spruce.run()
    undo = _edit(project / "app/calc.py", "return x * 2", "return x + x")
    _, selected = await spruce.run()
    assert selected["selected"] == 1
    undo()
    _edit(project / "app/calc.py", "return x * 2", "return 2 * x")
    _, everything = await spruce.run(all_tests=True)
    assert (everything["selected"], everything["carried"]) == (7, 0)
    assert everything["selection"] == "all 7 tests run: --all-tests"
    _edit(project / "app/calc.py", "return 2 * x", "return x * 2 + 0")
    monkeypatch.setenv("CI", "true")
    _, ci = await spruce.run()
    assert (ci["selected"], ci["carried"]) == (7, 0)
    _, uncached = await spruce.run(no_cache=True)
    assert uncached["total"] == 7 and "carried" not in uncached


def _map_path(project: Path, cache: Path) -> Path:
    settings = SelectionSettings(cache=ResultCache(cache), job_id="x")
    selector = Selector(
        settings=settings,
        project=project.resolve(),
        files=FileSet(project, []),
        identity=(),
        cache_env=(),
        scratch=cache,
    )
    key = selector.map_key
    return cache / key[:2] / f"{key}.json"


async def test_a_half_written_map_is_ignored(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    cache = tmp_path / "cache"
    spruce = Spruce(project, cache)
    await spruce.run()
    stored = _map_path(project, cache)
    stored.write_bytes(stored.read_bytes()[: len(stored.read_bytes()) // 2])
    _edit(project / "app/calc.py", "return x * 3", "return x * 4")
    failing, end = await spruce.run()
    assert failing == _pytest_failures(project)
    assert (end["selected"], end["carried"]) == (7, 0)
    assert end["selection"] == "all 7 tests run: no test map yet"


def _spruce_cli(project: Path, cache: Path) -> subprocess.Popen[bytes]:
    """`spruce run` of the tests workflow in a process group of its own (to kill it whole)."""
    env = {**os.environ, "SPRUCE_CACHE_DIR": str(cache), "SPRUCE_STORE": "memory://"}
    return subprocess.Popen(
        [sys.executable, "-m", "spruce", "run", str(project), "--skip-hooks", "--format", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def test_a_run_killed_mid_suite_leaves_a_map_that_is_used_correctly(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    cache = tmp_path / "cache"
    spruce = Spruce(project, cache)
    await spruce.run()  # a map exists
    gate = tmp_path / "started"
    slow = project / "tests" / "test_slow.py"
    slow.write_text(
        "import os, pathlib, time\n\n\ndef test_slow():\n"
        f"    pathlib.Path({str(gate)!r}).write_text(str(os.getpid()))\n"
        "    time.sleep(60)\n"
    )
    _edit(project / "app/calc.py", "return x * 3", "return x * 4")
    process = _spruce_cli(project, cache)
    deadline = time.monotonic() + 60
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the pid is written
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    os.kill(int(gate.read_text()), signal.SIGKILL)  # pytest runs in a process group of its own
    slow.unlink()
    failing, end = await spruce.run()
    assert failing == _pytest_failures(project) == {"tests/test_calc.py::test_triple"}
    assert (end["total"], end["carried"]) == (7, 6)  # the map of the last whole run is used
