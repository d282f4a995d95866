"""Git hooks that run spruce: `spruce install` writes one, `spruce uninstall` takes it away.

A hook already there is never overwritten: it is kept beside ours as `<type>.spruce-previous`,
runs first (a failure stops the commit or push), and comes back on uninstall. The hooks
directory is git's own answer (`git rev-parse --git-path hooks`), so `core.hooksPath` counts.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Final, Literal

from spruce.errors import UsageError

HookType = Literal["pre-commit", "pre-push"]
HOOK_TYPES: Final[tuple[HookType, ...]] = ("pre-commit", "pre-push")
MARK: Final = "# installed by `spruce install`"
PREVIOUS_SUFFIX: Final = ".spruce-previous"

_TEMPLATE: Final = """#!/bin/sh
{mark} ({hook_type}); `spruce uninstall` removes it.
here="$(cd "$(dirname "$0")" && pwd)"
{stdin}if [ -x "$here/{hook_type}{previous}" ]; then
    {feed}"$here/{hook_type}{previous}" "$@" || exit $?
fi
{scope}if {python} -c 'import spruce' >/dev/null 2>&1; then
    exec {python} -m spruce run {args}{project}
fi
exec spruce run {args}{project}
"""
# pre-push reads the refs being pushed on stdin: keep them for the previous hook.
_KEEP_STDIN: Final = 'refs="$(cat)"\n'
_FEED_STDIN: Final = "printf '%s\\n' \"$refs\" | "
# Only what the push adds, when the branch has an upstream; else the whole project.
_PUSH_SCOPE: Final = (
    "scope=\n"
    "if git rev-parse --verify --quiet '@{upstream}' >/dev/null 2>&1; then\n"
    "    scope='--changed=@{upstream}'\n"
    "fi\n"
)


def hooks_dir(project: Path) -> Path:
    """Where git looks for this repository's hooks."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--git-path", "hooks"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        raise UsageError(f"git is needed to install a hook: {exc}") from None
    if done.returncode != 0:
        raise UsageError(f"{project} is not inside a git work tree")
    return (project / done.stdout.strip()).resolve()


def hook_script(project: Path, hook_type: HookType) -> str:
    """The shell script of one hook type, for this project and this interpreter."""
    pushing = hook_type == "pre-push"
    return _TEMPLATE.format(
        mark=MARK,
        hook_type=hook_type,
        previous=PREVIOUS_SUFFIX,
        stdin=_KEEP_STDIN if pushing else "",
        feed=_FEED_STDIN if pushing else "",
        scope=_PUSH_SCOPE if pushing else "",
        python=shlex.quote(sys.executable),
        args="$scope " if pushing else "--staged ",
        project=shlex.quote(str(project)),
    )


def install(project: Path, hook_type: HookType) -> list[str]:
    """Write the hook (keeping any other hook as the previous one); returns what was done."""
    directory = hooks_dir(project)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / hook_type
    previous = directory / (hook_type + PREVIOUS_SUFFIX)
    done = []
    if (target.exists() or target.is_symlink()) and not is_ours(target):
        if previous.exists() or previous.is_symlink():
            raise UsageError(
                f"{target} is not spruce's and {previous.name} is taken: move one of them away"
            )
        os.replace(target, previous)
        done.append(f"kept the existing hook as {previous} (it runs before spruce)")
    temporary = target.with_name(f".{hook_type}.spruce-new")
    temporary.write_text(hook_script(project, hook_type), encoding="utf-8")
    temporary.chmod(0o755)
    os.replace(temporary, target)
    done.append(f"installed {target}")
    return done


def uninstall(project: Path, hook_type: HookType) -> list[str]:
    """Remove spruce's hook and put back the one it kept; returns what was done."""
    directory = hooks_dir(project)
    target = directory / hook_type
    previous = directory / (hook_type + PREVIOUS_SUFFIX)
    if not (target.exists() or target.is_symlink()):
        return [f"no {hook_type} hook installed in {directory}"]
    if not is_ours(target):
        raise UsageError(f"{target} was not written by spruce: left as it is")
    done = []
    if previous.exists() or previous.is_symlink():
        os.replace(previous, target)
        done.append(f"restored the previous hook {target}")
    else:
        target.unlink()
        done.append(f"removed {target}")
    return done


def is_ours(path: Path) -> bool:
    """Whether a hook file was written by `spruce install`."""
    try:
        with path.open("rb") as handle:
            return MARK.encode() in handle.read(512)
    except OSError:
        return False
