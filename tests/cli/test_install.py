"""`spruce install` / `spruce uninstall` with real git commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.git_support import git, git_sample, spruce, spruce_env

pytestmark = pytest.mark.slow
EXISTING = b'#!/bin/sh\necho ran >> "$(git rev-parse --show-toplevel)/../existing.log"\n'


def commit(project: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    git(project, "add", *paths)
    return subprocess.run(
        ["git", "commit", "-q", "-m", "change"],
        cwd=project,
        capture_output=True,
        text=True,
        env=spruce_env(project.parent),
        timeout=300,
        check=False,
    )


def test_a_commit_with_a_finding_is_refused_and_a_clean_one_passes(tmp_path: Path) -> None:
    project = git_sample("clean", tmp_path)
    done = spruce(project, "install")
    assert done.returncode == 0, done.stderr
    (project / "bad.py").write_text("import os\n")
    refused = commit(project, "bad.py")
    assert refused.returncode != 0
    assert "F401" in refused.stdout + refused.stderr
    assert git(project, "log", "--oneline").count("\n") == 1
    (project / "bad.py").write_text("VALUE = 1\n")
    assert commit(project, "bad.py").returncode == 0
    assert git(project, "log", "--oneline").count("\n") == 2


def test_an_existing_hook_keeps_running_and_uninstall_restores_it(tmp_path: Path) -> None:
    project = git_sample("clean", tmp_path)
    hook = project / ".git" / "hooks" / "pre-commit"
    hook.write_bytes(EXISTING)
    hook.chmod(0o755)
    done = spruce(project, "install")
    assert "kept the existing hook" in done.stderr
    (project / "ok.py").write_text("VALUE = 1\n")
    assert commit(project, "ok.py").returncode == 0
    assert (tmp_path / "existing.log").read_text() == "ran\n"
    assert spruce(project, "uninstall").returncode == 0
    assert hook.read_bytes() == EXISTING
    assert not (hook.parent / "pre-commit.spruce-previous").exists()


def test_core_hooks_path_is_honoured_and_pre_push_checks_what_the_push_adds(
    tmp_path: Path,
) -> None:
    project = git_sample("clean", tmp_path)
    git(project, "config", "core.hooksPath", "githooks")
    done = spruce(project, "install", "--hook-type", "pre-push")
    assert done.returncode == 0, done.stderr
    script = (project / "githooks" / "pre-push").read_text()
    assert "--changed=@{upstream}" in script
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "-q", "-u", "origin", "main")
    (project / "bad.py").write_text("import os\n")
    git(project, "add", "bad.py")
    git(project, "commit", "-q", "-m", "a finding")
    pushed = subprocess.run(
        ["git", "push", "-q", "origin", "main"],
        cwd=project,
        capture_output=True,
        text=True,
        env=spruce_env(tmp_path),
        timeout=300,
        check=False,
    )
    assert pushed.returncode != 0 and "F401" in pushed.stdout + pushed.stderr
    assert spruce(project, "uninstall", "--hook-type", "pre-push").returncode == 0
    assert not (project / "githooks" / "pre-push").exists()


def test_uninstall_leaves_a_hook_spruce_did_not_write(tmp_path: Path) -> None:
    project = git_sample("clean", tmp_path)
    hook = project / ".git" / "hooks" / "pre-commit"
    hook.write_bytes(EXISTING)
    done = spruce(project, "uninstall")
    assert done.returncode == 2 and "not written by spruce" in done.stderr
    assert hook.read_bytes() == EXISTING
