"""`spruce run --files/--changed/--staged/--hook/--skip/-q` on real git repositories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.git_support import git, git_sample, spruce, spruce_env

pytestmark = pytest.mark.slow


def hooks_of(stdout: str) -> dict[str, dict[str, Any]]:
    result = json.loads(stdout)
    return {hook["id"]: hook for phase in result["phases"] for hook in phase["hooks"]}


def finding_paths(hook: dict[str, Any]) -> set[str]:
    return {finding["path"] for finding in hook["findings"]}


@pytest.fixture
def two_findings(tmp_path: Path) -> Path:
    """type_error's typed.py (a mypy error) plus two files with a ruff finding each."""
    project = git_sample("type_error", tmp_path)
    (project / "one.py").write_text("import os\n")
    (project / "two.py").write_text("import sys\n")
    git(project, "add", "one.py", "two.py")
    git(project, "commit", "-q", "-m", "two findings")
    return project


def test_files_limit_file_local_hooks_while_mypy_judges_the_whole_project(
    two_findings: Path,
) -> None:
    done = spruce(
        two_findings, "run", "--comp", "--hook", "mypy", "--format", "json", "--files", "two.py"
    )
    assert done.returncode == 1, done.stderr
    assert finding_paths(hooks_of(done.stdout)["mypy"]) == {"typed.py"}
    fast = spruce(two_findings, "run", "--fast", "--format", "json", "--files", "two.py")
    assert fast.returncode == 1, fast.stderr
    assert finding_paths(hooks_of(fast.stdout)["ruff-check"]) == {"two.py"}


def test_changed_takes_files_differing_from_the_ref_and_untracked_ones(
    two_findings: Path,
) -> None:
    (two_findings / "one.py").write_text("import os  # edited\n")
    (two_findings / "three.py").write_text("import json\n")
    (two_findings / ".gitignore").write_text("ignored.py\n")
    (two_findings / "ignored.py").write_text("import re\n")
    done = spruce(two_findings, "run", "--fast", "--format", "json", "--changed")
    assert done.returncode == 1, done.stderr
    assert finding_paths(hooks_of(done.stdout)["ruff-check"]) == {"one.py", "three.py"}
    since_first = spruce(two_findings, "run", "--fast", "--format", "json", "--changed", "HEAD~1")
    assert finding_paths(hooks_of(since_first.stdout)["ruff-check"]) == {
        "one.py", "two.py", "three.py"
    }  # fmt: skip


def test_an_empty_scope_is_a_quick_pass_that_says_so(two_findings: Path) -> None:
    done = spruce(two_findings, "run", "--format", "json", "--changed")
    assert done.returncode == 0, done.stderr
    assert "nothing in scope (files changed since HEAD): a quick pass" in done.stderr
    hooks = hooks_of(done.stdout)
    assert {hook["status"] for hook in hooks.values()} == {"skipped"}
    assert hooks["mypy"]["reason"] == "nothing in scope (files changed since HEAD)"


def test_staged_checks_the_index_and_gives_unstaged_edits_back_byte_for_byte(
    two_findings: Path,
) -> None:
    # Staged: a clean version; unstaged on top: a finding, CRLF endings, no final newline.
    (two_findings / "one.py").write_text("VALUE = 1\n")
    git(two_findings, "add", "one.py")
    unstaged = b"import os\r\nVALUE = 2\r\n\x00\xff"
    (two_findings / "one.py").write_bytes(unstaged)
    (two_findings / "two.py").unlink()  # an unstaged deletion of a file with a finding
    done = spruce(two_findings, "run", "--fast", "--format", "json", "--staged")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 file(s) in scope (the staged files)" in done.stderr
    assert (two_findings / "one.py").read_bytes() == unstaged
    assert not (two_findings / "two.py").exists()
    assert git(two_findings, "diff", "--cached", "--name-only").split() == ["one.py"]
    # The other way round: the finding is staged, the fix is not.
    (two_findings / "one.py").write_text("import json\n")
    git(two_findings, "add", "one.py")
    (two_findings / "one.py").write_text("VALUE = 3\n")
    refused = spruce(two_findings, "run", "--fast", "--format", "json", "--staged")
    assert refused.returncode == 1
    assert finding_paths(hooks_of(refused.stdout)["ruff-check"]) == {"one.py"}
    assert (two_findings / "one.py").read_text() == "VALUE = 3\n"


def test_hook_and_skip_choose_hooks_and_the_skipped_ones_say_why(two_findings: Path) -> None:
    env = {**spruce_env(two_findings.parent), "SPRUCE_SKIP": "codespell, end-of-file"}
    done = spruce(
        two_findings, "run", "--fast", "--format", "json", "--skip", "ruff-check", env=env
    )
    assert done.returncode == 0, done.stderr
    hooks = hooks_of(done.stdout)
    assert hooks["ruff-check"]["status"] == "skipped"
    assert hooks["ruff-check"]["reason"] == "skipped by --skip"
    assert hooks["codespell"]["reason"] == "skipped by SPRUCE_SKIP"
    assert hooks["end-of-file"]["reason"] == "skipped by SPRUCE_SKIP"
    assert hooks["ruff-format"]["status"] == "passed"
    only = spruce(two_findings, "run", "--fast", "--format", "json", "--hook", "ruff-check")
    ran = {
        hook_id for hook_id, hook in hooks_of(only.stdout).items() if hook["status"] != "skipped"
    }
    assert ran == {"ruff-check"}
    assert hooks_of(only.stdout)["ruff-format"]["reason"] == "not chosen by --hook"


def test_an_unknown_hook_id_is_a_usage_error_listing_the_known_ones(two_findings: Path) -> None:
    done = spruce(two_findings, "run", "--skip", "ruff-chek")
    assert done.returncode == 2
    assert "--skip: unknown hook id 'ruff-chek'" in done.stderr
    assert "ruff-check" in done.stderr and "pytest" in done.stderr
    assert spruce(two_findings, "run", "--hook", "nope").returncode == 2


@pytest.mark.parametrize("given", ["--skip", "--no-ca", "--fail-f", "--skip-h", "--comp=x"])
def test_options_are_never_abbreviated(two_findings: Path, given: str) -> None:
    done = spruce(two_findings, "run", given)
    assert done.returncode == 2
    assert "usage:" in done.stderr or "error:" in done.stderr


def test_quiet_prints_the_closing_line_only_and_verbose_works_after_the_command(
    two_findings: Path,
) -> None:
    done = spruce(two_findings, "run", "--fast", "-q")
    assert done.returncode == 1
    assert done.stdout.count("\n") == 1 and " failed" in done.stdout, done.stdout
    assert done.stderr == ""
    verbose = spruce(two_findings, "run", "--fast", "--hook", "check-ast", "-vv")
    assert verbose.returncode == 0
    assert "DEBUG" in verbose.stderr
