"""`spruce completion`: scripts that real shells accept and that offer spruce's options."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli.git_support import spruce


def complete_in_bash(script: str, *words: str) -> list[str]:
    """What bash offers for the last of `words` with the script loaded."""
    quoted = " ".join(f"'{word}'" for word in words)
    program = (
        f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _spruce; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", program], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.split()


def test_bash_completes_commands_new_options_and_their_values(tmp_path: Path) -> None:
    script = spruce(tmp_path, "completion", "bash").stdout
    assert {"run", "install", "completion"} <= set(complete_in_bash(script, "spruce", ""))
    assert complete_in_bash(script, "spruce", "run", "--sta") == ["--staged"]
    assert set(complete_in_bash(script, "spruce", "run", "--sk")) == {"--skip", "--skip-hooks"}
    assert complete_in_bash(script, "spruce", "install", "--hook-type", "pre-p") == ["pre-push"]
    assert complete_in_bash(script, "spruce", "completion", "z") == ["zsh"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_run_option(tmp_path: Path, shell: str) -> None:
    done = spruce(tmp_path, "completion", shell)
    assert done.returncode == 0
    for option in ("staged", "changed", "files", "watch", "quiet", "all-tests"):
        assert option in done.stdout
    if shutil.which(shell):  # where the shell exists, it must accept the script
        check = [shell, "-n"] if shell == "zsh" else [shell, "--no-execute"]
        subprocess.run([*check], input=done.stdout, text=True, timeout=30, check=True)


def test_an_unknown_shell_is_a_usage_error(tmp_path: Path) -> None:
    assert spruce(tmp_path, "completion", "tcsh").returncode == 2
