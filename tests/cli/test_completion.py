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


# zsh's completion system needs a terminal: compadd and _files stand in, printing the candidates.
ZSH_PROBE = """compdef() {{ :; }}
_files() {{ print -- FILES; }}
compadd() {{ shift; print -l -- "$@"; }}
{script}
words=({words}); CURRENT=${{#words}}; PREFIX=${{words[-1]}}; _spruce"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_offers_the_options_and_values(tmp_path: Path) -> None:
    script = spruce(tmp_path, "completion", "zsh").stdout

    def offered(*words: str) -> list[str]:
        program = ZSH_PROBE.format(script=script, words=" ".join(f"'{w}'" for w in words))
        done = subprocess.run(
            ["zsh", "-f", "-c", program], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout.split()

    assert "--staged" in offered("spruce", "-v", "run", "--sta")
    assert offered("spruce", "install", "--hook-type", "") == ["pre-commit", "pre-push"]
    assert offered("spruce", "completion", "") == ["bash", "zsh", "fish"]
    assert offered("spruce", "run", "") == ["FILES"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_offers_the_options_and_values(tmp_path: Path) -> None:
    script = tmp_path / "spruce.fish"
    script.write_text(spruce(tmp_path, "completion", "fish").stdout)

    def offered(line: str) -> list[str]:
        program = f"source {script}; complete -C '{line}'"
        done = subprocess.run(
            ["fish", "--no-config", "-c", program],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return [candidate.split("\t")[0] for candidate in done.stdout.splitlines()]

    assert offered("spruce run --sta") == ["--staged"]
    assert offered("spruce install --hook-type ") == ["pre-commit", "pre-push"]
    assert sorted(offered("spruce completion ")) == ["bash", "fish", "zsh"]


def test_an_unknown_shell_is_a_usage_error(tmp_path: Path) -> None:
    assert spruce(tmp_path, "completion", "tcsh").returncode == 2
