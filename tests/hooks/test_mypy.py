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
