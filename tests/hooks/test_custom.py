"""The project's own command hooks, as `[[tool.spruce.custom]]` declares them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.runner import hook_ends, run_workflow

pytestmark = pytest.mark.anyio


async def test_a_command_that_cannot_be_executed_is_a_hook_error_saying_why(
    tmp_path: Path,
) -> None:
    (tmp_path / "check.sh").write_text("#!/bin/sh\nexit 0\n")  # not executable
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.spruce.custom]]\nid = "mine"\ncommand = ["./check.sh"]\npass_filenames = false\n'
    )
    outcome, events = await run_workflow(tmp_path, workflow="fast")
    end = hook_ends(events)["fast_hooks/mine"]
    assert (end.event.value, end.data["status"]) == ("hook_failed", "error")
    assert end.data["reason"] == "cannot run ./check.sh: Permission denied"
    assert outcome.exit_code == 1
