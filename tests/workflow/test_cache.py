"""The result cache: an unchanged re-run answers every hook from it; a changed file re-runs only
the hooks that read it; --no-cache, errors and timeouts are never answered from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from spruce.events import Event
from spruce.hooks.base import HookResult, HookStatus
from spruce.workflow.cache import ResultCache, cache_key
from tests.workflow.runner import copy_sample, hook_ends, run_workflow

pytestmark = [pytest.mark.anyio]


def cached(events: list[Event]) -> dict[str, bool]:
    return {step: e.data["cached"] for step, e in hook_ends(events).items()}


@pytest.mark.slow
async def test_an_unchanged_rerun_is_answered_from_the_cache(tmp_path: Path) -> None:
    project = copy_sample("failing_test", tmp_path)
    cache = tmp_path / "cache"
    first, events = await run_workflow(project, cache_dir=cache)
    ran = {step for step, e in hook_ends(events).items() if e.event.value != "hook_skipped"}
    assert not any(cached(events).values())
    second, again = await run_workflow(project, cache_dir=cache, job_id="job2")
    assert {s for s, hit in cached(again).items() if hit} == ran
    assert second.exit_code == first.exit_code == 1
    # The cached failing test is still reported, case by case.
    outcomes = [e.data["outcome"] for e in again if e.event.value == "test_case_completed"]
    assert sorted(outcomes) == ["failed", "passed"]

    (project / "README.md").write_text("# failing\n")  # a new non-Python file
    _, events3 = await run_workflow(project, cache_dir=cache, job_id="job3")
    rerun = {
        s for s, hit in cached(events3).items() if not hit and s in ran | {"fast_hooks/codespell"}
    }
    assert rerun == {
        "fast_hooks/trailing-whitespace",
        "fast_hooks/end-of-file",
        "fast_hooks/merge-conflict",
        "fast_hooks/large-files",
        "fast_hooks/codespell",
        "fast_hooks/ruff-format",  # ruff formats the Python blocks of Markdown files too
        "tests/pytest",
    }
    assert cached(events3)["comprehensive_hooks/mypy"] and cached(events3)["fast_hooks/ruff-check"]

    _, events4 = await run_workflow(project, cache_dir=cache, no_cache=True, job_id="job4")
    assert not any(cached(events4).values())


def test_errors_and_timeouts_are_never_stored(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    statuses: tuple[HookStatus, ...] = ("error", "timeout", "skipped")
    for status in statuses:
        cache.put(status, HookResult(status=status))
        assert cache.get(status) is None
    cache.put("ok", HookResult(status="failed", exit_code=1))
    hit = cache.get("ok")
    assert hit is not None and hit.cached and hit.status == "failed"


def test_the_key_changes_with_version_args_inputs_and_config() -> None:
    base = cache_key(("ruff", "0.1", "check"), [("a.py", "1")], [("pyproject.toml", "x")])
    assert base == cache_key(("ruff", "0.1", "check"), [("a.py", "1")], [("pyproject.toml", "x")])
    assert base != cache_key(("ruff", "0.2", "check"), [("a.py", "1")], [("pyproject.toml", "x")])
    assert base != cache_key(
        ("ruff", "0.1", "check", "-q"), [("a.py", "1")], [("pyproject.toml", "x")]
    )
    assert base != cache_key(("ruff", "0.1", "check"), [("a.py", "2")], [("pyproject.toml", "x")])
    assert base != cache_key(("ruff", "0.1", "check"), [("a.py", "1")], [("pyproject.toml", "y")])


def test_the_cache_stays_under_its_size_limit(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path, max_bytes=2000)
    big = HookResult(status="failed", reason="x" * 500)
    for index in range(10):
        cache.put(f"{index:02d}" + "0" * 62, big)
    cache.prune()
    total = sum(p.stat().st_size for p in tmp_path.glob("*/*.json"))
    assert 0 < total <= 2000
