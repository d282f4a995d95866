"""Sample projects in real git repositories, and `spruce` run on them as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.workflow.runner import copy_sample

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Sample",
    "GIT_AUTHOR_EMAIL": "sample@example.invalid",
    "GIT_COMMITTER_NAME": "Sample",
    "GIT_COMMITTER_EMAIL": "sample@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in `project`; its stdout."""
    done = _run(["git", *args], project, env)
    done.check_returncode()
    return done.stdout


def git_sample(name: str, into: Path) -> Path:
    """A copy of a sample project as a git repository with one commit of every file."""
    project = copy_sample(name, into)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial")
    return project


def spruce_env(base: Path) -> dict[str, str]:
    """The environment of a spruce run in a test: private cache, state and home, no store."""
    return {
        **os.environ,
        **GIT_ENV,
        "HOME": str(base / "home"),
        "XDG_STATE_HOME": str(base / "state"),
        "SPRUCE_CACHE_DIR": str(base / "cache"),
        "SPRUCE_STORE": "memory://",
    }


def spruce(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`spruce ARGS` in `project` as its working directory."""
    return _run([sys.executable, "-m", "spruce", *args], project, env)


def _run(
    argv: list[str], cwd: Path, env: dict[str, str] | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env or spruce_env(cwd.parent),
        timeout=120,
        check=False,
    )


def add_slow_hook(project: Path, pid_file: Path) -> None:
    """Commit a custom hook `slow` that appends its pid to `pid_file` and sleeps a minute."""
    with (project / "pyproject.toml").open("a") as handle:
        handle.write(
            '\n[[tool.spruce.custom]]\nid = "slow"\n'
            'command = ["python", "-c", "import os, sys, time; '
            "open(sys.argv[1], 'a').write(f'{os.getpid()}\\\\n'); time.sleep(60)\", "
            f'"{pid_file}"]\n'
        )
    git(project, "commit", "-qam", "a slow hook")
