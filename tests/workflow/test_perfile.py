"""Per-file results: after one file of a 200-file project changes, the file-local hooks look at
that file only and merge the stored findings of the rest, equal to what a full run finds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from spruce.events import Event
from spruce.hooks.base import Finding, HookResult, Prepared
from spruce.report.result import RESULT_SCHEMA, build_result
from spruce.workflow.cache import ResultCache
from spruce.workflow.files import FileSet
from spruce.workflow.perfile import answer_per_file
from tests.workflow.runner import hook_ends, run_workflow

pytestmark = [pytest.mark.anyio]

FILE_LOCAL = (
    "fast_hooks/ruff-check",
    "fast_hooks/ruff-format",
    "fast_hooks/codespell",
    "fast_hooks/trailing-whitespace",
    "comprehensive_hooks/bandit",
)
_CONFIG = """\
[tool.spruce.hooks.mypy]
enabled = false
[tool.spruce.hooks.vulture]
enabled = false
[tool.spruce.hooks.pytest]
enabled = false
"""


def _module(number: int) -> str:
    text = f'"""Module {number}."""\n\n\ndef value_{number}() -> int:\n    return {number}\n'
    if number % 40 == 5:
        text = "import os\n" + text  # ruff-check: F401
    if number % 40 == 7:
        text += "\nx  =  1\n"  # ruff-format
    if number % 40 == 9:
        text += "\n# teh end\n"  # codespell
    if number % 40 == 11:
        text += "\n\ndef run(code: str) -> object:\n    return eval(code)\n"  # bandit: B307
    return text


def _project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text(_CONFIG)
    for number in range(200):
        (root / "pkg" / f"m{number:03}.py").write_text(_module(number))
    return root


def _ends(events: list[Event]) -> dict[str, dict[str, Any]]:
    return {step: event.data for step, event in hook_ends(events).items()}


@pytest.mark.slow
async def test_touching_one_file_rechecks_that_file_only(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    cache = tmp_path / "cache"
    _, cold = await run_workflow(project, cache_dir=cache)
    for step in FILE_LOCAL:
        data = _ends(cold)[step]
        assert (data["files_checked"], data["files_cached"]) == (201 if "codespell" in step or
            "whitespace" in step else 200, 0), step  # fmt: skip
    edited = project / "pkg" / "m045.py"  # already has an F401; gains a typo and an eval
    edited.write_text(_module(45) + "\n# recieve\n\n\ndef ev(c: str) -> object:\n"
                      "    return eval(c)\n")  # fmt: skip
    _, warm = await run_workflow(project, cache_dir=cache, job_id="warm")
    _, full = await run_workflow(project, no_cache=True, job_id="full")
    warm_ends, full_ends = _ends(warm), _ends(full)
    for step in FILE_LOCAL:
        data = warm_ends[step]
        assert data["files_checked"] == 1, step
        assert data["files_cached"] == full_ends[step]["files_checked"] - 1, step
        assert data["details"] == full_ends[step]["details"], step
        assert data["status"] == full_ends[step]["status"], step
        assert data["exit_code"] == full_ends[step]["exit_code"], step
    found = {(d["path"], d["code"]) for s in FILE_LOCAL for d in warm_ends[s]["details"]}
    assert {("pkg/m045.py", "F401"), ("pkg/m045.py", "B307"), ("pkg/m045.py", "misspelling")} <= (
        found
    )
    assert ("pkg/m085.py", "F401") in found  # a cached finding of an untouched file
    document = build_result(warm)
    jsonschema.validate(document, RESULT_SCHEMA)
    by_id = {hook["id"]: hook for phase in document["phases"] for hook in phase["hooks"]}
    assert (by_id["bandit"]["files_checked"], by_id["bandit"]["files_cached"]) == (1, 199)
    assert "files_checked" not in by_id.get("mypy", {})
    _, unchanged = await run_workflow(project, cache_dir=cache, job_id="again")
    assert all(_ends(unchanged)[step]["cached"] for step in FILE_LOCAL)
    assert all(_ends(unchanged)[step]["files_checked"] == 0 for step in FILE_LOCAL)


def _finding(path: str) -> Finding:
    return Finding(path=path, line=1, column=1, code="X1", message="m", severity="error", tool="t")


async def test_a_damaged_store_or_an_unattributable_finding_checks_every_file(
    tmp_path: Path,
) -> None:
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(name)
    files = FileSet(tmp_path, ["a.py", "b.py"])
    cache = ResultCache(tmp_path / "cache")
    prepared = Prepared(inputs=("a.py", "b.py"), identity=("t",), per_file=True)
    seen: list[tuple[str, ...]] = []

    async def run(part: Prepared) -> HookResult:
        seen.append(part.inputs)
        return HookResult(status="failed", exit_code=1, findings=(_finding("elsewhere.py"),))

    first = await answer_per_file(cache, "k" * 64, files, prepared, run)
    assert first.findings == (_finding("elsewhere.py"),)
    await answer_per_file(cache, "k" * 64, files, prepared, run)
    assert seen == [("a.py", "b.py")] * 2  # nothing was stored: both runs checked both files
    cache.put_bytes("k" * 64, b'{"files": {"a.py": [')  # half a document
    await answer_per_file(cache, "k" * 64, files, prepared, run)
    assert seen[-1] == ("a.py", "b.py")
