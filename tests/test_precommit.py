"""A project's .pre-commit-config.yaml run by spruce: local hooks get exactly the files
pre-commit itself gives them and end the same way; well-known remote hooks become built-in
hooks; unknown remote hooks are skipped with the reason; a malformed file names its line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.git_support import git, git_sample, spruce, spruce_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REMOTE_REPOS = """
  - repo: https://github.com/astral-sh/ruff-pre-commit
    rev: v0.17.6
    hooks:
      - id: ruff
        args: [--fix, --select, F401]
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v6.0.0
    hooks:
      - id: trailing-whitespace
        exclude: ^docs/
      - id: check-json
  - repo: https://github.com/psf/black
    rev: 25.1.0
    hooks:
      - id: black
"""


def recorded(log: Path) -> dict[str, list[str]]:
    """hook id -> the files it was given (over all its runs), from record.py's log."""
    given: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        hook, *files = line.split()
        given.setdefault(hook, []).extend(files)
    return {hook: sorted(files) for hook, files in given.items()}


def pre_commit_statuses(output: str) -> dict[str, str]:
    """`name......Passed` lines of `pre-commit run` -> {name: passed|failed|skipped}."""
    statuses = {}
    for line in output.splitlines():
        for word in ("Passed", "Failed", "Skipped"):
            if line.endswith(word) and "." in line:
                statuses[line.split(".")[0].split("(")[0].strip()] = word.lower()
    return statuses


def spruce_hooks(stdout: str) -> dict[str, dict[str, Any]]:
    result = json.loads(stdout)
    return {hook["id"]: hook for phase in result["phases"] for hook in phase["hooks"]}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return git_sample("pre_commit_local", tmp_path)


def test_local_hooks_get_the_files_pre_commit_gives_them_and_end_the_same(
    project: Path, tmp_path: Path
) -> None:
    env = {**spruce_env(tmp_path), "PRE_COMMIT_HOME": str(tmp_path / "pre-commit")}
    by_pre_commit = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**env, "RECORD_LOG": str(tmp_path / "pre-commit.log")},
        timeout=540,
        check=False,
    )
    expected = pre_commit_statuses(by_pre_commit.stdout)
    assert len(expected) == 10, by_pre_commit.stdout + by_pre_commit.stderr
    by_spruce = spruce(
        project, "run", "--fast", "--pre-commit-config", "--format", "json",
        env={**env, "RECORD_LOG": str(tmp_path / "spruce.log")},
    )  # fmt: skip
    assert by_spruce.returncode == 1, by_spruce.stderr
    hooks = spruce_hooks(by_spruce.stdout)
    assert {hook_id: hook["status"] for hook_id, hook in hooks.items()} == expected
    assert recorded(tmp_path / "spruce.log") == recorded(tmp_path / "pre-commit.log")
    assert {f["path"] for f in hooks["grep-marker"]["findings"]} == {"b.py"}
    assert {f["path"] for f in hooks["no-rej"]["findings"]} == {"old.rej"}


def test_well_known_remote_hooks_map_to_built_ins_and_unknown_ones_are_skipped(
    project: Path,
) -> None:
    config = project / ".pre-commit-config.yaml"
    config.write_text(config.read_text() + REMOTE_REPOS)
    (project / "lint.py").write_text("import os  \n")
    git(project, "add", "-A")
    done = spruce(project, "run", "--fast", "--format", "json", "--pre-commit-config")
    hooks = spruce_hooks(done.stdout)
    assert [(f["path"], f["code"]) for f in hooks["ruff-check"]["findings"]] == [
        ("lint.py", "F401")
    ]
    assert (project / "lint.py").read_text() == "import os  \n"  # --fix was not applied
    assert {f["path"] for f in hooks["trailing-whitespace"]["findings"]} == {"lint.py"}
    assert hooks["check-json"]["status"] == "skipped"
    assert "no built-in spruce hook" in hooks["check-json"]["reason"]
    assert hooks["black"]["status"] == "skipped"
    assert "never downloads hook repositories" in hooks["black"]["reason"]
    assert "codespell" not in hooks  # the built-in checks gave way to the config's hooks


def test_pre_commit_true_in_pyproject_and_skip_by_a_pre_commit_id(project: Path) -> None:
    with (project / "pyproject.toml").open("a") as handle:
        handle.write("[tool.spruce]\npre_commit = true\n")
    done = spruce(
        project, "run", "--fast", "--format", "json", "--hook", "grep-marker",
        env={**spruce_env(project.parent), "RECORD_LOG": str(project.parent / "log")},
    )  # fmt: skip
    hooks = spruce_hooks(done.stdout)
    assert hooks["grep-marker"]["status"] == "failed"
    assert hooks["no-rej"]["reason"] == "not chosen by --hook"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("repos:\n  - repo: local\n    hooks:\n    - id: x\n   bad: indent\n", "line 5"),
        ("repos:\n  - repo: local\n    hooks: {}\n", "line 2"),
        ("repos:\n  - repo: local\n    hooks:\n      - id: x\n        entry: [1]\n", "line 4"),
    ],
)
def test_a_malformed_config_exits_2_naming_the_line(tmp_path: Path, text: str, where: str) -> None:
    project = git_sample("clean", tmp_path)
    (project / ".pre-commit-config.yaml").write_text(text)
    done = spruce(project, "run", "--fast", "--pre-commit-config")
    assert done.returncode == 2
    assert ".pre-commit-config.yaml" in done.stderr and where in done.stderr, done.stderr
