"""The hook listing MCP's `list_hooks` and `spruce` users see: every hook, enabled or not."""

from __future__ import annotations

from pathlib import Path

from spruce.config import Config, load_config
from spruce.workflow.definitions import BUILTIN_HOOKS, FIXERS, HookSpec
from spruce.workflow.toolenv import ToolEnv, tool_envs


def hook_listing(project: Path | None) -> list[dict[str, object]]:
    """One row per hook: id, phase, tool, description, enabled, available (and a hint if not)."""
    root = (project or Path.cwd()).resolve()
    config = load_config(project) if project is not None else Config()
    env, own = tool_envs(root)
    rows = [_row(spec, config, env, own) for spec in (*BUILTIN_HOOKS, *FIXERS)]
    rows.extend(
        {
            "id": hook.id,
            "phase": hook.phase,
            "tool": hook.command[0] if hook.command else "",
            "description": hook.description or " ".join(hook.command),
            "enabled": config.hook(hook.id).enabled,
            "available": True,
            "hint": None,
        }
        for hook in config.custom
    )
    return rows


def _row(spec: HookSpec, config: Config, env: ToolEnv, own: ToolEnv) -> dict[str, object]:
    available = spec.package is None or tool_python(spec, env, own) is not None
    return {
        "id": spec.id,
        "phase": spec.phase,
        "tool": spec.tool,
        "description": spec.description,
        "enabled": config.hook(spec.id).enabled,
        "available": available,
        "hint": None if available else install_hint(spec),
    }


# Tools that import the project's code must run in the project's interpreter; the others may
# fall back to spruce's own (where ruff always is, as a dependency of spruce).
_PROJECT_BOUND = frozenset({"pytest"})


def tool_python(spec: HookSpec, env: ToolEnv, own: ToolEnv) -> ToolEnv | None:
    """The environment to run a hook's tool in, or None if neither has it installed."""
    if spec.package is None or env.version(spec.package) is not None:
        return env
    if spec.tool not in _PROJECT_BOUND and own.version(spec.package) is not None:
        return own
    return None


def install_hint(spec: HookSpec) -> str:
    """What to install when a hook's tool is missing."""
    return f"{spec.tool} is not installed: pip install {spec.package} (or 'spruce[tools]')"
