"""A project's `.pre-commit-config.yaml` read into spruce hooks, phase by phase.

`repo: local` hooks run as pre-commit would run them; hooks of well-known repositories become
spruce's built-in hook for the same job (with their args); other remote hooks are reported
skipped, since spruce never downloads hook repositories. A malformed file is a ConfigError
naming its line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from spruce.errors import ConfigError

if TYPE_CHECKING:
    from spruce.hooks.base import Hook
    from spruce.hooks.precommit import FileFilter
    from spruce.workflow.definitions import PhaseName

CONFIG_FILE: Final = ".pre-commit-config.yaml"
_LINE: Final = "__line__"
# repository (owner/name, lower case) -> its hook id -> spruce's built-in hook for that job
WELL_KNOWN: Final[dict[str, dict[str, str]]] = {
    "pre-commit/pre-commit-hooks": {
        "trailing-whitespace": "trailing-whitespace",
        "end-of-file-fixer": "end-of-file",
        "check-toml": "check-toml",
        "check-yaml": "check-yaml",
        "check-ast": "check-ast",
        "check-merge-conflict": "merge-conflict",
        "check-added-large-files": "large-files",
    },
    "astral-sh/ruff-pre-commit": {
        "ruff": "ruff-check",
        "ruff-check": "ruff-check",
        "ruff-format": "ruff-format",
    },
    "pre-commit/mirrors-mypy": {"mypy": "mypy"},
    "codespell-project/codespell": {"codespell": "codespell"},
    "pycqa/bandit": {"bandit": "bandit"},
}
_RENAMED: Final = {"charliermarsh/ruff-pre-commit": "astral-sh/ruff-pre-commit"}
# Arguments that make a tool write files: spruce's checks run read-only (--fix fixes).
_WRITING_ARGS: Final = frozenset(
    {"--fix", "--exit-non-zero-on-fix", "--show-fixes", "--unsafe-fixes", "-w", "--write-changes"}
)
# Local hooks whose program judges the whole project run with the comprehensive hooks.
_COMPREHENSIVE_PROGRAMS: Final = frozenset(
    {"mypy", "dmypy", "pyright", "pylint", "pytype", "bandit", "vulture", "pytest", "tox", "nox"}
)
_COMMIT_STAGES: Final = frozenset({"pre-commit", "commit"})


def load_pre_commit(project: Path) -> dict[PhaseName, list[Hook]]:
    """The hooks of the project's .pre-commit-config.yaml, by phase, in the file's order."""
    document = read_document(project / CONFIG_FILE)
    from spruce.hooks.precommit import FileFilter

    top = FileFilter(
        top_files=_text(document, "files", ""), top_exclude=_text(document, "exclude", "^$")
    )
    plan: dict[PhaseName, list[Hook]] = {"fast_hooks": [], "comprehensive_hooks": []}
    taken: set[str] = set()
    for repo in _items(document, "repos", "the file"):
        url = _text(repo, "repo", None)
        for hook in _items(repo, "hooks", f"repo {url!r}"):
            made = _make_hook(url, hook, top, taken)
            taken.add(made.spec.id)
            plan.setdefault(made.spec.phase, []).append(made)
    return plan


def hook_ids(project: Path) -> list[str]:
    """The ids the project's pre-commit hooks have in spruce (for --hook/--skip)."""
    return [hook.spec.id for hooks in load_pre_commit(project).values() for hook in hooks]


def read_document(path: Path) -> dict[str, Any]:
    """The YAML mapping, each mapping holding its line as `__line__`; ConfigError otherwise."""
    import yaml  # type: ignore[import-untyped]

    class _Loader(yaml.SafeLoader):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            mapping[_LINE] = node.start_mark.line + 1
            return mapping

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path.name}: no such file in {path.parent}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: cannot be read: {exc}") from None
    try:
        document = yaml.load(text, Loader=_Loader)  # nosec B506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path.name}: {where}: {problem}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path.name}: line 1: expected a mapping with `repos`")
    return document


def _make_hook(url: str, hook: dict[str, Any], top: FileFilter, taken: set[str]) -> Hook:
    from spruce.hooks.precommit import UnavailableHook

    hook_id = _text(hook, "id", None)
    file_filter = _filter(hook, top)
    stages = hook.get("stages")
    if isinstance(stages, list) and stages and not _COMMIT_STAGES.intersection(stages):
        reason = f"stages {', '.join(map(str, stages))}: not run at commit time"
    elif url == "local":
        return _local_hook(hook, _unique(hook_id, taken), file_filter)
    elif url == "meta":
        reason = "pre-commit's meta hooks check pre-commit's own configuration"
    elif (builtin := WELL_KNOWN.get(_repo_name(url), {}).get(hook_id)) is not None:
        return _builtin_hook(builtin, _args(hook), file_filter)
    elif _repo_name(url) in WELL_KNOWN:
        reason = f"{url} hook {hook_id!r} has no built-in spruce hook for its job"
    else:
        reason = f"a hook of {url}: spruce never downloads hook repositories"
    spec = _spec(_unique(hook_id, taken), "fast_hooks", "pre-commit", url)
    return UnavailableHook(spec=spec, reason=reason)


def _local_hook(hook: dict[str, Any], hook_id: str, file_filter: FileFilter) -> Hook:
    import shlex

    from spruce.hooks.precommit import LANGUAGES, LocalHook, UnavailableHook

    where = f"hook {hook_id!r} (line {hook.get(_LINE, '?')})"
    language = _text(hook, "language", None)
    if language not in LANGUAGES:
        reason = f"language {language}: spruce runs local hooks of {', '.join(LANGUAGES)}"
        return UnavailableHook(spec=_spec(hook_id, "fast_hooks", language), reason=reason)
    entry = _text(hook, "entry", None)
    try:
        program = Path(shlex.split(entry)[0]).name if language != "pygrep" else ""
    except (ValueError, IndexError):
        raise ConfigError(f"{CONFIG_FILE}: {where}: entry {entry!r} is not a command") from None
    phase: PhaseName = "comprehensive_hooks" if program in _COMPREHENSIVE_PROGRAMS else "fast_hooks"
    return LocalHook(
        spec=_spec(hook_id, phase, program or language, _text(hook, "name", hook_id)),
        language=language,
        entry=entry,
        args=_args(hook),
        filter=file_filter,
        pass_filenames=bool(hook.get("pass_filenames", True)),
        always_run=bool(hook.get("always_run", False)),
    )


def _builtin_hook(hook_id: str, args: tuple[str, ...], file_filter: FileFilter) -> Hook:
    from spruce.config import Config
    from spruce.hooks.precommit import FilteredHook
    from spruce.hooks.registry import hooks_for
    from spruce.hooks.tool import ToolHook

    builtins = {
        hook.spec.id: hook
        for phase in ("fast_hooks", "comprehensive_hooks")
        for hook in hooks_for(phase, Config())
    }
    inner = builtins[hook_id]
    kept = tuple(arg for arg in args if arg.split("=", 1)[0] not in _WRITING_ARGS)
    if kept and isinstance(inner, ToolHook):
        inner = dataclasses.replace(inner, args=(*inner.args, *kept))
    return FilteredHook(inner=inner, filter=file_filter)


def _filter(hook: dict[str, Any], top: FileFilter) -> FileFilter:
    return dataclasses.replace(
        top,
        files=_text(hook, "files", ""),
        exclude=_text(hook, "exclude", "^$"),
        types=_strings(hook, "types", ("file",)),
        types_or=_strings(hook, "types_or", ()),
        exclude_types=_strings(hook, "exclude_types", ()),
    )


def _spec(hook_id: str, phase: PhaseName, tool: str, description: str = "") -> Any:
    from spruce.workflow.definitions import HookSpec

    return HookSpec(id=hook_id, phase=phase, tool=tool, description=description or hook_id)


def _unique(hook_id: str, taken: set[str]) -> str:
    """pre-commit allows an id twice (with other args); spruce's step ids must differ."""
    candidate, number = hook_id, 1
    while candidate in taken:
        number += 1
        candidate = f"{hook_id}-{number}"
    return candidate


def _repo_name(url: str) -> str:
    name = url.lower().removesuffix("/").removesuffix(".git")
    name = "/".join(name.split("/")[-2:])
    return _RENAMED.get(name, name)


def _args(hook: dict[str, Any]) -> tuple[str, ...]:
    return _strings(hook, "args", ())


def _text(mapping: dict[str, Any], key: str, default: str | None) -> str:
    value = mapping.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(_wrong(mapping, key, "a string" if value is not None else "present"))
    return value


def _strings(mapping: dict[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = mapping.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ConfigError(_wrong(mapping, key, "a list of strings"))
    return tuple(str(v) for v in value)


def _items(mapping: dict[str, Any], key: str, owner: str) -> list[dict[str, Any]]:
    value = mapping.get(key)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(_wrong(mapping, key, f"a list of mappings (in {owner})"))
    return value


def _wrong(mapping: dict[str, Any], key: str, expected: str) -> str:
    return f"{CONFIG_FILE}: line {mapping.get(_LINE, '?')}: `{key}` must be {expected}"
