"""Each built-in hook, run for real on the sample project with its defect, reports that defect
normalised (hook, path, 1-based line, code) and fails; the other hooks of the phase pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.runner import copy_sample, hook_ends, run_workflow

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

F = "fast"
C = "comprehensive"
DEFECTS = [
    # sample, workflow, step, (path, line, column, code, tool)
    ("format", F, "fast_hooks/ruff-format", ("shape.py", 1, 11, "unformatted", "ruff")),
    ("lint", F, "fast_hooks/ruff-check", ("tool.py", 1, 8, "F401", "ruff")),
    (
        "whitespace",
        F,
        "fast_hooks/trailing-whitespace",
        ("notes.txt", 1, 6, "trailing-whitespace", "spruce"),
    ),
    ("whitespace", F, "fast_hooks/end-of-file", ("end.txt", 1, 1, "end-of-file", "spruce")),
    ("bad_toml", F, "fast_hooks/check-toml", ("settings.toml", 2, 1, "check-toml", "spruce")),
    ("typo", F, "fast_hooks/codespell", ("README.md", 3, 1, "misspelling", "codespell")),
    ("type_error", C, "comprehensive_hooks/mypy", ("typed.py", 2, 12, "return-value", "mypy")),
    ("security", C, "comprehensive_hooks/bandit", ("unsafe.py", 2, 12, "B307", "bandit")),
    (
        "dead_code",
        C,
        "comprehensive_hooks/vulture",
        ("dead.py", 3, 1, "unreachable-code", "vulture"),
    ),
    (
        "failing_test",
        "tests",
        "tests/pytest",
        ("tests/test_calc.py", 9, 1, "test-failed", "pytest"),
    ),
]


@pytest.mark.parametrize(("sample", "workflow", "step", "expected"), DEFECTS)
async def test_the_defect_is_found_where_it_is(
    tmp_path: Path, sample: str, workflow: str, step: str, expected: tuple[str, int, int, str, str]
) -> None:
    outcome, events = await run_workflow(copy_sample(sample, tmp_path), workflow=workflow)
    assert outcome.exit_code == 1
    ends = hook_ends(events)
    end = ends.pop(step)
    assert (end.event.value, end.data["status"], end.data["findings"]) == (
        "hook_failed",
        "failed",
        1,
    )
    finding = end.data["details"][0]
    got = (finding["path"], finding["line"], finding["column"], finding["code"], finding["tool"])
    assert got == expected
    assert finding["message"] and finding["severity"] in ("error", "warning", "info")
    others = {s: e.data["status"] for s, e in ends.items() if e.data["status"] == "failed"}
    if sample != "whitespace":  # its two defects fail two hooks
        assert others == {}


async def test_the_clean_project_exits_0(tmp_path: Path) -> None:
    outcome, events = await run_workflow(copy_sample("clean", tmp_path))
    assert outcome.exit_code == 0
    assert all(e.data["findings"] == 0 for e in hook_ends(events).values())


async def test_a_missing_tool_is_skipped_with_an_install_hint(tmp_path: Path) -> None:
    project = copy_sample("clean", tmp_path)
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to("/usr/bin/false")
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    outcome, events = await run_workflow(project, workflow="tests")
    end = hook_ends(events)["tests/pytest"]
    assert end.event.value == "hook_skipped"
    assert "pip install pytest" in end.data["reason"]
    assert outcome.exit_code == 0
