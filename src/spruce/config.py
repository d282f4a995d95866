"""`[tool.spruce]` in a project's pyproject.toml, read into a frozen `Config`.

Every mistake is a ConfigError that names the offending key (the CLI exits 2 on it).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from spruce.errors import ConfigError

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
# `[tool.spruce] test_workers`: pytest processes, or "auto" (the usable CPUs when it gains).
TestWorkers = Annotated[int, msgspec.Meta(ge=1)] | Literal["auto"]
HookId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]

DEFAULT_JOB_TIMEOUT: Final = 3600.0
DEFAULT_HOOK_TIMEOUT: Final = 900.0


class HookConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of one hook (`[tool.spruce.hooks.ID]`)."""

    enabled: bool = True
    args: tuple[str, ...] = ()  # appended to the hook's own arguments
    paths: tuple[str, ...] = ()  # globs or directories the hook is limited to (empty: all)
    exclude: tuple[str, ...] = ()
    timeout: PositiveFloat | None = None


class CustomHook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A project's own command hook (`[[tool.spruce.custom]]`); never run through a shell."""

    id: HookId
    phase: Literal["fast_hooks", "comprehensive_hooks"] = "fast_hooks"
    command: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]
    files: tuple[str, ...] = ()  # globs; the matching files are appended to the command
    pass_filenames: bool = True
    description: str = ""
    timeout: PositiveFloat | None = None


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole `[tool.spruce]` table, with defaults for what it leaves out."""

    timeout: PositiveFloat = DEFAULT_JOB_TIMEOUT
    hook_timeout: PositiveFloat = DEFAULT_HOOK_TIMEOUT
    exclude: tuple[str, ...] = ()
    large_file_kb: Annotated[int, msgspec.Meta(gt=0)] = 500
    # Run the test suite beside the read-only checks once no phase before it writes files.
    start_tests_early: bool = True
    # Environment variables whose values decide results: part of every cache key.
    cache_env: tuple[str, ...] = ()
    # Test selection also under CI=true (off there by default: CI wants the whole suite).
    select_tests: bool = False
    # Processes the test suite runs in: 1 (tests may share state), N, or "auto".
    test_workers: TestWorkers = 1
    # Run the hooks of the project's .pre-commit-config.yaml instead of the built-in checks.
    pre_commit: bool = False
    # Findings kept per hook in its events and reports; the others are counted, never hidden.
    max_findings: Annotated[int, msgspec.Meta(gt=0)] = 10_000
    hooks: dict[str, HookConfig] = msgspec.field(default_factory=dict)
    custom: tuple[CustomHook, ...] = ()

    def hook(self, hook_id: str) -> HookConfig:
        """The settings of one hook (defaults when the table does not mention it)."""
        return self.hooks.get(hook_id) or _DEFAULT_HOOK

    def hook_timeout_for(self, hook_id: str) -> float:
        """The hook's own timeout, else the project-wide one."""
        return self.hook(hook_id).timeout or self.hook_timeout


_DEFAULT_HOOK: Final = HookConfig()
T = TypeVar("T")
_PATH_RE: Final = re.compile(r"\$((?:\.[A-Za-z0-9_-]+|\[\d+\])*)")


def load_config(project: Path) -> Config:
    """Read `[tool.spruce]` from `project/pyproject.toml` (defaults if absent)."""
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return Config()
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{pyproject}: not valid TOML: {exc}") from None
    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{pyproject}: tool: expected a table")
    return parse_config(tool.get("spruce", {}))


def parse_config(table: Any) -> Config:
    """Validate a `[tool.spruce]` table; ConfigError names the first wrong key."""
    if not isinstance(table, dict):
        raise ConfigError("tool.spruce: expected a table")
    raw_hooks = table.get("hooks", {})
    if not isinstance(raw_hooks, dict):
        raise ConfigError("tool.spruce.hooks: expected a table of hook tables")
    hooks = {
        str(hook_id): _convert(value, HookConfig, f"tool.spruce.hooks.{hook_id}")
        for hook_id, value in raw_hooks.items()
    }
    _check_test_workers(table.get("test_workers", 1))
    rest = {key: value for key, value in table.items() if key != "hooks"}
    config = msgspec.structs.replace(_convert(rest, Config, "tool.spruce"), hooks=hooks)
    from spruce.workflow.definitions import HOOKS_BY_ID

    custom_ids = [hook.id for hook in config.custom]
    for index, hook_id in enumerate(custom_ids):
        if hook_id in HOOKS_BY_ID or hook_id in custom_ids[:index]:
            raise ConfigError(
                f"tool.spruce.custom[{index}].id: {hook_id!r} is already a hook id; choose another"
            )
    for hook_id in config.hooks:
        if hook_id not in HOOKS_BY_ID and hook_id not in custom_ids:
            known = ", ".join(sorted(HOOKS_BY_ID))
            raise ConfigError(f"tool.spruce.hooks.{hook_id}: no such hook (built-in: {known})")
    return config


def _check_test_workers(value: Any) -> None:
    """One message for every wrong value (msgspec's differ by type and name an enum)."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return
    raise ConfigError(
        f'tool.spruce.test_workers: expected an integer >= 1 or "auto", got {value!r}'
    )


def _convert(value: Any, kind: type[T], key: str) -> T:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), key)) from None


def _explain(message: str, key: str) -> str:
    """Turn msgspec's `... - at `$.custom[0].id`` into `tool.spruce.custom[0].id: ...`."""
    text, _, where = message.rpartition(" - at ")
    if not text:
        text, where = message, ""
    match = _PATH_RE.search(where.strip("`"))
    if match:
        key += match.group(1)
    field = re.search(r"unknown field `([^`]+)`", text)
    if field:
        return f"{key}.{field.group(1)}: unknown key"
    return f"{key}: {text[0].lower()}{text[1:]}"
