"""This repository as a pre-commit hook repository: `pre-commit try-repo` installs spruce from
it into pre-commit's own virtualenv and runs it on the files pre-commit passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.git_support import git_sample, spruce_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
REPOSITORY = Path(__file__).resolve().parents[1]


def try_repo(project: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**spruce_env(project.parent), "PRE_COMMIT_HOME": str(project.parent / "pre-commit")}
    pre_commit = [sys.executable, "-m", "pre_commit"]
    return subprocess.run(
        [*pre_commit, "try-repo", str(REPOSITORY), "spruce", "--files", *files],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=840,
        check=False,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_try_repo_fails_on_a_file_with_a_finding_and_passes_on_a_clean_one(
    tmp_path: Path,
) -> None:
    project = git_sample("clean", tmp_path)
    (project / "bad.py").write_text("import os\n")
    (project / "good.py").write_text("VALUE = 1\n")
    failed = try_repo(project, "bad.py", "good.py")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "bad.py:1:8 F401" in failed.stdout
    passed = try_repo(project, "good.py")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout
