"""The built-in workflows and hooks: what each workflow runs, in which phase, with which tool.

These names are public (CLI, events, MCP `list_hooks`); the engine and the hooks read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from pathlib import Path

PhaseName = Literal["fast_hooks", "code_cleaning", "comprehensive_hooks", "tests"]


@dataclass(frozen=True, kw_only=True)
class WorkflowDefinition:
    """One workflow: the phases of its quality stage, in order (config always runs first)."""

    name: str
    description: str
    phases: tuple[PhaseName, ...]


@dataclass(frozen=True, kw_only=True)
class HookSpec:
    """A built-in hook: its public id, phase, tool, and the Python module that provides the tool."""

    id: str
    phase: PhaseName
    tool: str
    description: str
    module: str | None = None  # None: runs inside spruce
    package: str | None = None  # the distribution to install when the tool is missing


WORKFLOWS: Final[dict[str, WorkflowDefinition]] = {
    definition.name: definition
    for definition in (
        WorkflowDefinition(
            name="standard_quality",
            description="fast hooks, code cleaning (with --fix), comprehensive hooks, tests",
            phases=("fast_hooks", "code_cleaning", "comprehensive_hooks", "tests"),
        ),
        WorkflowDefinition(
            name="fast",
            description="the fast hooks (and code cleaning with --fix)",
            phases=("fast_hooks", "code_cleaning"),
        ),
        WorkflowDefinition(
            name="comprehensive",
            description="the comprehensive hooks: type check, security scan, dead code",
            phases=("comprehensive_hooks",),
        ),
        WorkflowDefinition(name="tests", description="the test suite only", phases=("tests",)),
    )
}

IN_PROCESS: Final = "spruce"  # the tool of the checks spruce does itself
_SPRUCE: Final = IN_PROCESS

BUILTIN_HOOKS: Final[tuple[HookSpec, ...]] = (
    HookSpec(
        id="trailing-whitespace",
        phase="fast_hooks",
        tool=_SPRUCE,
        description="lines ending in spaces or tabs",
    ),
    HookSpec(
        id="end-of-file",
        phase="fast_hooks",
        tool=_SPRUCE,
        description="files not ending in exactly one newline",
    ),
    HookSpec(
        id="check-toml", phase="fast_hooks", tool=_SPRUCE, description="TOML that does not parse"
    ),
    HookSpec(
        id="check-yaml",
        phase="fast_hooks",
        tool=_SPRUCE,
        description="YAML that does not parse",
        module="yaml",
        package="pyyaml",
    ),
    HookSpec(
        id="check-ast", phase="fast_hooks", tool=_SPRUCE, description="Python that does not parse"
    ),
    HookSpec(
        id="merge-conflict",
        phase="fast_hooks",
        tool=_SPRUCE,
        description="leftover merge conflict markers",
    ),
    HookSpec(
        id="large-files", phase="fast_hooks", tool=_SPRUCE, description="files over the size limit"
    ),
    HookSpec(
        id="ruff-format",
        phase="fast_hooks",
        tool="ruff",
        description="code ruff format would change",
        module="ruff",
        package="ruff",
    ),
    HookSpec(
        id="ruff-check",
        phase="fast_hooks",
        tool="ruff",
        description="ruff lint rules",
        module="ruff",
        package="ruff",
    ),
    HookSpec(
        id="codespell",
        phase="fast_hooks",
        tool="codespell",
        description="common misspellings",
        module="codespell_lib",
        package="codespell",
    ),
    HookSpec(
        id="mypy",
        phase="comprehensive_hooks",
        tool="mypy",
        description="static type check",
        module="mypy",
        package="mypy",
    ),
    HookSpec(
        id="bandit",
        phase="comprehensive_hooks",
        tool="bandit",
        description="security issues",
        module="bandit",
        package="bandit",
    ),
    HookSpec(
        id="vulture",
        phase="comprehensive_hooks",
        tool="vulture",
        description="dead code",
        module="vulture",
        package="vulture",
    ),
    HookSpec(
        id="pytest",
        phase="tests",
        tool="pytest",
        description="the test suite, one event per test",
        module="pytest",
        package="pytest",
    ),
)

# The code_cleaning phase (--fix) runs these fixers, one after another, in this order.
FIXERS: Final[tuple[HookSpec, ...]] = (
    HookSpec(
        id="trailing-whitespace",
        phase="code_cleaning",
        tool=_SPRUCE,
        description="strip trailing whitespace",
    ),
    HookSpec(
        id="end-of-file",
        phase="code_cleaning",
        tool=_SPRUCE,
        description="end files with one newline",
    ),
    HookSpec(
        id="ruff-check",
        phase="code_cleaning",
        tool="ruff",
        description="apply ruff's safe fixes",
        module="ruff",
        package="ruff",
    ),
    HookSpec(
        id="ruff-format",
        phase="code_cleaning",
        tool="ruff",
        description="format with ruff",
        module="ruff",
        package="ruff",
    ),
)

HOOKS_BY_ID: Final[dict[str, HookSpec]] = {spec.id: spec for spec in BUILTIN_HOOKS}


def list_hooks(project: Path | None = None) -> list[dict[str, object]]:
    """Every hook (built-in, fixer, and the project's custom ones): id, phase, tool,
    description, enabled (per the project's [tool.spruce]) and available (tool installed)."""
    from spruce.workflow.catalog import hook_listing

    return hook_listing(project)
