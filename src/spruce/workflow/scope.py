"""Which files a run looks at (`--files`, `--changed`, `--staged`) and which hooks it runs
(`--hook`, `--skip`, `SPRUCE_SKIP`): the `HookGate` the actions consult before each hook.

File-local hooks see only the files in scope; project-wide hooks judge the whole project.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from spruce.errors import UsageError

if TYPE_CHECKING:
    from spruce.hooks.base import Hook, Prepared

# Hooks that judge the project as a whole whatever the scope (a type error or a failing test
# may come from a file nobody touched).
PROJECT_WIDE: Final = frozenset({"mypy", "vulture", "pytest"})
GIT_TIMEOUT: Final = 30.0


@dataclass(frozen=True, kw_only=True)
class HookGate:
    """The run's choice of hooks and files; `refuse` and `narrow` are asked for each hook."""

    scope: frozenset[str] | None = None  # None: every file
    scope_label: str = ""  # what the scope is, for reasons ("the staged files")
    only: frozenset[str] = frozenset()  # --hook: run these and no others
    skip: Mapping[str, str] = field(default_factory=dict)  # id -> why it is skipped

    def refuse(self, hook_id: str) -> str | None:
        """Why this hook does not run at all, or None."""
        if hook_id in self.skip:
            return self.skip[hook_id]
        if self.only and hook_id not in self.only:
            return "not chosen by --hook"
        return None

    def narrow(self, hook: Hook, prepared: Prepared) -> Prepared | str:
        """The prepared run limited to the scope, or why the hook has nothing to do."""
        if self.scope is None:
            return prepared
        if not self.scope:
            return f"nothing in scope ({self.scope_label or 'no files'})"
        if not is_file_local(hook):
            return prepared
        inputs = tuple(path for path in prepared.inputs if path in self.scope)
        if not inputs:
            return f"no matching files in scope ({self.scope_label})"
        return dataclasses.replace(prepared, inputs=inputs)


def gate_for(
    project: Path,
    *,
    hooks: Sequence[str] = (),
    skip: Sequence[str] = (),
    env_skip: str | None = None,
    files: Sequence[str] | None = None,
    changed: str | None = None,
    staged: bool = False,
    pre_commit: bool = False,
    cwd: Path | None = None,
) -> HookGate | None:
    """The gate a run's choices ask for (None: every hook on every file); UsageError for an
    unknown hook id or a file outside the project. `files` are relative to `cwd` (default: the
    project). Runs git for `changed` and `staged`."""
    known = known_hook_ids(project, pre_commit=pre_commit) if hooks or skip else None
    if known is not None:
        check_hook_ids(hooks, known, option="--hook")
        check_hook_ids(skip, known, option="--skip")
    scope: frozenset[str] | None = None
    label = ""
    if files:
        scope, label = files_scope(project, files, cwd=cwd or project), "the files given"
    elif changed:
        scope, label = changed_scope(project, changed), f"files changed since {changed}"
    elif staged:
        scope, label = staged_scope(project), "the staged files"
    reasons = skip_reasons(skip, env_skip)
    if scope is None and not hooks and not reasons:
        return None
    return HookGate(scope=scope, scope_label=label, only=frozenset(hooks), skip=reasons)


def known_hook_ids(project: Path, *, pre_commit: bool) -> list[str] | None:
    """Built-in, custom and (when asked for) pre-commit hook ids; None when the configuration
    is broken (the job's config phase then reports what is wrong)."""
    from spruce.config import load_config
    from spruce.errors import ConfigError
    from spruce.workflow.definitions import HOOKS_BY_ID

    known = list(HOOKS_BY_ID)
    try:
        config = load_config(project)
        known.extend(hook.id for hook in config.custom)
        if pre_commit or config.pre_commit:
            from spruce.precommit import hook_ids

            known.extend(hook_ids(project))
    except ConfigError:
        return None
    return known


def is_file_local(hook: Hook) -> bool:
    """Whether a hook's verdict on a file depends on that file alone."""
    declared = getattr(hook, "file_local", None)
    if isinstance(declared, bool):
        return declared
    custom = getattr(hook, "hook", None)  # a [[tool.spruce.custom]] command
    if custom is not None and hasattr(custom, "pass_filenames"):
        return bool(custom.pass_filenames and custom.files)
    return hook.spec.id not in PROJECT_WIDE


def skip_reasons(skip: Sequence[str], env_skip: str | None) -> dict[str, str]:
    """`--skip` ids and `SPRUCE_SKIP=id,id`, each with the reason the result shows."""
    reasons = {hook_id: "skipped by SPRUCE_SKIP" for hook_id in parse_id_list(env_skip or "")}
    reasons.update({hook_id: "skipped by --skip" for hook_id in skip})
    return reasons


def parse_id_list(text: str) -> list[str]:
    """`a,b , c` -> ["a", "b", "c"]."""
    return [part.strip() for part in text.split(",") if part.strip()]


def check_hook_ids(given: Sequence[str], known: Sequence[str], *, option: str) -> None:
    """UsageError naming an unknown id and listing the known ones."""
    unknown = [hook_id for hook_id in given if hook_id not in known]
    if unknown:
        raise UsageError(
            f"{option}: unknown hook id {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(set(known)))}"
        )


def files_scope(project: Path, paths: Sequence[str], *, cwd: Path) -> frozenset[str]:
    """`--files`: project-relative posix paths (given relative to `cwd`, or absolute)."""
    chosen = set()
    for given in paths:
        absolute = Path(os.path.abspath(cwd / given))
        try:
            relative = absolute.relative_to(project)
        except ValueError:
            raise UsageError(f"--files: {given} is not inside the project {project}") from None
        chosen.add(relative.as_posix())
    return frozenset(chosen)


def changed_scope(project: Path, ref: str) -> frozenset[str]:
    """`--changed REF`: tracked files that differ from REF (in the index or the work tree),
    plus untracked files git does not ignore; deleted files are left out."""
    differing = git_lines(project, "diff", "--name-only", "--no-renames", "--relative", ref, "--")
    untracked = git_lines(project, "ls-files", "--others", "--exclude-standard")
    return frozenset(path for path in (*differing, *untracked) if (project / path).is_file())


def staged_scope(project: Path) -> frozenset[str]:
    """The files the index adds or changes (what a commit would carry), project-relative."""
    staged = git_lines(
        project, "diff", "--cached", "--name-only", "--diff-filter=ACMRTUXB", "--relative"
    )
    return frozenset(staged)


def git_lines(cwd: Path, command: str, *args: str) -> list[str]:
    """The NUL-separated paths a git command prints; UsageError naming git's complaint."""
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=false", command, "-z", *args],
            cwd=cwd,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"git {command} failed: {exc}") from None
    if done.returncode != 0:
        message = os.fsdecode(done.stderr).strip().splitlines()
        raise UsageError(f"git {command}: {message[-1] if message else 'failed'}")
    return [os.fsdecode(raw) for raw in done.stdout.split(b"\0") if raw]
