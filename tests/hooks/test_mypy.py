"""mypy on a package that ships its stubs beside its sources, as attrs does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.runner import hook_ends, run_workflow

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_stubs_beside_sources_are_checked_not_refused_as_duplicates(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("def f(x):\n    return x\n")
    (package / "__init__.pyi").write_text("def f(x: int) -> str: ...\n")
    (tmp_path / "use.py").write_text("from pkg import f\n\ny: int = f(1)\n")
    outcome, events = await run_workflow(tmp_path, workflow="comprehensive")
    assert outcome.exit_code == 1
    end = hook_ends(events)["comprehensive_hooks/mypy"]
    assert end.data["status"] == "failed", end.data["reason"]
    found = [(f["path"], f["line"], f["code"]) for f in end.data["details"]]
    assert found == [("use.py", 3, "assignment")]


async def test_mypy_keeps_its_cache_in_spruces_cache_directory_never_in_the_project(
    tmp_path: Path,
) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "a.py").write_text("def f() -> int:\n    return 1\n")
    (project / "b.py").write_text("from a import f\n\nx: int = f()\n")
    cache = tmp_path / "cache"
    await run_workflow(project, workflow="comprehensive", cache_dir=cache)
    assert not (project / ".mypy_cache").exists()
    assert list(cache.glob("state/*/mypy/3.*/*"))  # mypy 2 keeps it in SQLite files
    # A warm run after a change in a dependency still finds what it breaks.
    (project / "a.py").write_text("def f() -> str:\n    return ''\n")
    outcome, events = await run_workflow(
        project, workflow="comprehensive", cache_dir=cache, job_id="j2"
    )
    end = hook_ends(events)["comprehensive_hooks/mypy"]
    assert [(f["path"], f["line"]) for f in end.data["details"]] == [("b.py", 3)]
    assert outcome.exit_code == 1
    await run_workflow(project, workflow="comprehensive", no_cache=True, job_id="j3")
    assert not (project / ".mypy_cache").exists()
