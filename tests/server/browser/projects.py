"""Sample projects for the dashboard's tests, built from the shared samples (one with something
for every part of the job page, one whose suite waits until the test releases it), and jobs
started on them through the API."""

from __future__ import annotations

import asyncio
import shutil
import sys
import textwrap
import uuid
from pathlib import Path

import httpx

from tests.server.conftest import PROJECTS, Served

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"

[tool.ruff]
line-length = 100

[tool.pytest.ini_options]
pythonpath = ["."]

[tool.mypy]
explicit_package_bases = true
"""
# A project command that fails and prints why, so its output is shown.
BROKEN_HOOK = """
[[tool.spruce.custom]]
id = "house-rules"
command = [{python!r}, "-c", "{script}"]
"""


BROKEN_SCRIPT = "import sys; print('checking house rules'); sys.exit('house-rules: config missing')"


def stamp(project: Path) -> None:
    """A file no earlier run saw, so that every hook really runs (no answer from the cache)."""
    (project / "stamp.py").write_text(f'STAMP = "{uuid.uuid4().hex}"\n')


def everything_project(root: Path) -> Path:
    """Lint, type, dead-code findings, a failing test and a project hook that fails."""
    project = root / "everything"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        PYPROJECT.format(name="everything")
        + BROKEN_HOOK.format(python=sys.executable, script=BROKEN_SCRIPT)
    )
    for sample, name in [("lint", "tool.py"), ("type_error", "typed.py"), ("dead_code", "dead.py"),
                         ("failing_test", "calc.py")]:  # fmt: skip
        shutil.copy(PROJECTS / sample / name, project / name)
    shutil.copytree(PROJECTS / "failing_test" / "tests", project / "tests")
    stamp(project)
    return project


# A comprehensive-phase hook that waits too, so the checks still run while the tests do.
HELD_HOOK = """
[[tool.spruce.custom]]
id = "wait-for-release"
phase = "comprehensive_hooks"
command = [{python!r}, "-c", "{script}"]
"""
WAIT_SCRIPT = (
    "import pathlib, time; d = time.monotonic() + 120\n"
    "while not pathlib.Path({release!r}).exists() and time.monotonic() < d: time.sleep(0.05)"
)


def held_project(root: Path, release: Path, *, quick: int = 5) -> Path:
    """Lint findings, `quick` passing tests, then one test that waits for `release` to exist;
    a comprehensive hook waits for it as well."""
    project = root / "held"
    (project / "tests").mkdir(parents=True)
    script = WAIT_SCRIPT.format(release=str(release)).replace("\n", "\\n").replace('"', '\\"')
    (project / "pyproject.toml").write_text(
        PYPROJECT.format(name="held") + HELD_HOOK.format(python=sys.executable, script=script)
    )
    shutil.copy(PROJECTS / "lint" / "tool.py", project / "tool.py")
    stamp(project)
    quick_tests = "".join(
        f"\n\ndef test_quick_{n}() -> None:\n    assert True\n" for n in range(quick)
    )
    (project / "tests" / "test_a_quick.py").write_text(quick_tests.lstrip())
    (project / "tests" / "test_z_held.py").write_text(
        textwrap.dedent(f"""\
            import time
            from pathlib import Path


            def test_waits_for_the_release() -> None:
                deadline = time.monotonic() + 120
                while not Path({str(release)!r}).exists():
                    assert time.monotonic() < deadline, "never released"
                    time.sleep(0.05)
            """)
    )
    return project


async def start_job(served: Served, project: Path, workflow: str = "standard_quality") -> str:
    """Start a job through the API; its id."""
    async with httpx.AsyncClient(base_url=served.http, timeout=30) as client:
        body = {"project": str(project), "workflow": workflow}
        started = await client.post("/api/jobs", json=body)
        assert started.status_code == 202, started.text
        job_id: str = started.json()["job_id"]
    return job_id


async def run_job(served: Served, project: Path) -> str:
    """Start a job through the API and wait for its end; its id."""
    job_id = await start_job(served, project)
    async with httpx.AsyncClient(base_url=served.http, timeout=30) as client:
        async with asyncio.timeout(240):
            while (await client.get(f"/api/jobs/{job_id}")).json()["status"] == "running":
                await asyncio.sleep(0.2)
    return job_id
