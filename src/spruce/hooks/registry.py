"""Which hook objects run in each phase, in order, for one project's configuration."""

from __future__ import annotations

from spruce.config import Config
from spruce.hooks.bandit import bandit_hooks
from spruce.hooks.base import Hook
from spruce.hooks.builtin import builtin_checks, builtin_fixers
from spruce.hooks.codespell import codespell_hooks
from spruce.hooks.custom import CommandHook
from spruce.hooks.mypy import mypy_hooks
from spruce.hooks.pytest import PytestHook
from spruce.hooks.ruff import ruff_fixers, ruff_hooks
from spruce.hooks.vulture import vulture_hooks
from spruce.workflow.definitions import BUILTIN_HOOKS, FIXERS, PhaseName


def hooks_for(phase: PhaseName, config: Config) -> list[Hook]:
    """The enabled hooks of a phase: built-ins in catalogue order, then the project's own."""
    if phase == "code_cleaning":
        fixers: dict[str, Hook] = {**builtin_fixers(), **ruff_fixers()}
        chosen = [fixers[spec.id] for spec in FIXERS]
    else:
        available: dict[str, Hook] = {
            **builtin_checks(),
            **ruff_hooks(),
            **codespell_hooks(),
            **mypy_hooks(),
            **bandit_hooks(),
            **vulture_hooks(),
            "pytest": PytestHook(),
        }
        chosen = [available[spec.id] for spec in BUILTIN_HOOKS if spec.phase == phase]
        chosen.extend(CommandHook.from_config(h) for h in config.custom if h.phase == phase)
    return [hook for hook in chosen if config.hook(hook.spec.id).enabled]
