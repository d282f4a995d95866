"""ruff on a project with a file it cannot parse: findings, not a tool error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.runner import hook_ends, run_workflow

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_syntax_error_is_a_format_finding_beside_the_unformatted_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "broken.py").write_text("def broken(:\n    pass\n")
    (tmp_path / "ugly.py").write_text("x  =  1\n")
    outcome, events = await run_workflow(tmp_path, workflow="fast")
    end = hook_ends(events)["fast_hooks/ruff-format"]
    assert (end.event.value, end.data["status"], end.data["exit_code"]) == (
        "hook_failed",
        "failed",
        2,
    )
    found = sorted((f["path"], f["line"], f["code"]) for f in end.data["details"])
    assert found == [("broken.py", 1, "invalid-syntax"), ("ugly.py", 1, "unformatted")]
    assert outcome.exit_code == 1
