"""The in-process checks on files a real project has: reST titles, CRLF conflict markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.runner import hook_ends, run_workflow

pytestmark = pytest.mark.anyio


async def test_merge_conflict_reports_real_markers_and_not_rest_underlines(tmp_path: Path) -> None:
    (tmp_path / "changes.rst").write_text("Changes\n=======\n\nVersion 1\n---------\n")
    (tmp_path / "clash.txt").write_bytes(b"<<<<<<< HEAD\r\na\r\n=======\r\nb\r\n>>>>>>> other\r\n")
    outcome, events = await run_workflow(tmp_path, workflow="fast")
    end = hook_ends(events)["fast_hooks/merge-conflict"]
    found = [(f["path"], f["line"]) for f in end.data["details"]]
    assert found == [("clash.txt", 1), ("clash.txt", 3), ("clash.txt", 5)]
    assert outcome.exit_code == 1
