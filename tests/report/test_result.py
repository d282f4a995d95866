"""The result document folded from event streams: finished, partial, cancelled, replayed."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import msgspec
import pytest

from spruce.events import Event
from spruce.report.result import RESULT_SCHEMA, Result, ResultBuilder, build_result
from tests.report.streams import (
    FAILING_JOB,
    MYPY_ERR,
    PYTEST_FAIL,
    RUFF_E741,
    RUFF_F401,
    T0,
    E,
    Step,
    events,
    hook_end,
    hook_start,
    index_of,
)

VALIDATOR = jsonschema.Draft202012Validator(RESULT_SCHEMA)


def hook(hook_id: str, status: str, duration: float, **fields: Any) -> dict[str, Any]:
    base = {
        "id": hook_id,
        "status": status,
        "duration": duration,
        "exit_code": 0,
        "cached": False,
        "reason": None,
        "findings": [],
        "output_tail": "",
    }
    merged = {**base, **fields}
    merged.setdefault("findings_total", len(merged["findings"]))
    merged.setdefault("findings_truncated", False)
    return merged


NO_TESTS: dict[str, Any] = {
    "passed": 0,
    "failed": 0,
    "skipped": 0,
    "errors": 0,
    "total": 0,
    "xfailed": 0,
    "xpassed": 0,
    "collection_errors": 0,
    "cases": [],
}
BROKEN_CASE: dict[str, Any] = {
    "nodeid": "tests/test_app.py::test_broken",
    "outcome": "failed",
    "duration": 0.01,
    "path": "tests/test_app.py",
    "line": 7,
    "message": "assert 1 == 2\nwhere 1 = add(0, 1)",
    "longrepr": None,
    "when": "call",
}


def test_a_finished_job_folds_into_the_spec_document() -> None:
    assert build_result(events()) == {
        "schema": "spruce.result/1",
        "job_id": "k3x9",
        "workflow": "standard_quality",
        "project": "/work/demo project",
        "status": "failed",
        "duration": 2.42,
        "phases": [
            {"name": "config", "status": "passed", "duration": 0.01, "hooks": []},
            {
                "name": "fast_hooks",
                "status": "failed",
                "duration": 0.06,
                "hooks": [
                    hook("trailing-whitespace", "passed", 0.01, exit_code=None),
                    hook(
                        "ruff-check", "failed", 0.05, exit_code=1, findings=[RUFF_F401, RUFF_E741]
                    ),
                    hook(
                        "codespell",
                        "skipped",
                        0.0,
                        exit_code=None,
                        reason="codespell is not installed: pip install codespell",
                    ),
                ],
            },
            {"name": "code_cleaning", "status": "skipped", "duration": 0.0, "hooks": []},
            {
                "name": "comprehensive_hooks",
                "status": "failed",
                "duration": 1.52,
                "hooks": [
                    hook("mypy", "failed", 1.5, exit_code=1, findings=[MYPY_ERR]),
                    hook("bandit", "passed", 0.0, cached=True),
                ],
            },
            {
                "name": "tests",
                "status": "failed",
                "duration": 0.81,
                "hooks": [hook("pytest", "failed", 0.8, exit_code=1, findings=[PYTEST_FAIL])],
            },
        ],
        "tests": {**NO_TESTS, "passed": 2, "failed": 1, "skipped": 1, "total": 4,
                  "cases": [BROKEN_CASE]},
    }  # fmt: skip


def test_a_running_job_shows_the_phases_so_far_and_its_running_hooks() -> None:
    cut = index_of(E.HOOK_STARTED, "comprehensive_hooks/bandit") + 1
    stream = events()[:cut]
    doc = build_result(stream)
    assert doc["status"] == "running"
    assert [p["name"] for p in doc["phases"]] == [
        "config",
        "fast_hooks",
        "code_cleaning",
        "comprehensive_hooks",
    ]
    running = doc["phases"][-1]
    assert running["status"] == "running"
    # Durations of what still runs count up to the latest event seen.
    assert running["duration"] == pytest.approx(0.01)
    assert running["hooks"] == [
        hook("mypy", "running", 0.0, exit_code=None),
        hook("bandit", "running", 0.0, exit_code=None),
    ]
    assert doc["duration"] == pytest.approx(0.09)
    assert doc["tests"] == NO_TESTS


def test_tests_are_counted_live_before_the_test_phase_ends() -> None:
    cut = index_of(E.TEST_CASE_COMPLETED, "tests/tests/test_app.py::TestUi::test_skip") + 1
    doc = build_result(events()[:cut])
    assert doc["tests"] == {
        **NO_TESTS,
        **{"passed": 1, "failed": 1, "skipped": 1, "total": 4, "cases": [BROKEN_CASE]},
    }
    pytest_hook = doc["phases"][-1]["hooks"][0]
    assert (pytest_hook["id"], pytest_hook["status"]) == ("pytest", "running")


def test_the_incremental_builder_agrees_with_a_fresh_fold_at_every_point() -> None:
    stream = events()
    builder = ResultBuilder()
    for n, event in enumerate(stream, start=1):
        builder.add(event)
        assert builder.result() == build_result(stream[:n])
        VALIDATOR.validate(builder.result(test_cases=True))
    assert builder.ended


def test_replayed_duplicates_and_other_jobs_change_nothing() -> None:
    stream = events()
    other = events(job_id="other")
    builder = ResultBuilder("k3x9")
    for event in [*stream[:10], *other, *stream[:12], *stream[5:]]:
        builder.add(event)
    assert builder.result() == build_result(stream)
    assert builder.last_seq == len(stream)


def test_a_cancelled_job_ends_what_was_still_running() -> None:
    cut = index_of(E.HOOK_STARTED, "comprehensive_hooks/bandit") + 1
    script = (
        *FAILING_JOB[:cut],
        Step(
            E.WORKFLOW_CANCELLED,
            None,
            {
                "workflow": "standard_quality",
                "status": "cancelled",
                "duration": 0.5,
                "reason": "interrupted",
                "exit_code": 130,
            },
            0.5,
        ),
    )
    doc = build_result(events(script))
    assert doc["status"] == "cancelled"
    assert doc["duration"] == 0.5
    phase = doc["phases"][-1]
    assert (phase["name"], phase["status"]) == ("comprehensive_hooks", "cancelled")
    assert phase["duration"] == pytest.approx(0.42)
    assert [(h["id"], h["status"]) for h in phase["hooks"]] == [
        ("mypy", "error"),
        ("bandit", "error"),
    ]
    assert phase["hooks"][0]["reason"] == "the job ended (cancelled) before this hook finished"
    assert phase["hooks"][0]["duration"] == pytest.approx(0.41)
    VALIDATOR.validate(doc)


def test_a_hook_skipped_without_starting_and_a_skipped_phase_both_appear() -> None:
    script = (
        FAILING_JOB[0],
        Step(
            E.FAST_HOOKS_STARTED, "fast_hooks", {"phase": "fast_hooks", "hooks": ["vulture"]}, 0.1
        ),
        hook_end(
            E.HOOK_SKIPPED,
            "fast_hooks",
            "vulture",
            "skipped",
            0.0,
            0.1,
            exit_code=None,
            reason="off",
        ),
        Step(
            E.CODE_CLEANING_COMPLETED,
            "code_cleaning",
            {"phase": "code_cleaning", "status": "skipped", "duration": 0.0, "reason": "no --fix"},
            0.2,
        ),
    )
    doc = build_result(events(script))
    assert doc["phases"] == [
        {
            "name": "fast_hooks",
            "status": "running",
            "duration": pytest.approx(0.1),
            "hooks": [hook("vulture", "skipped", 0.0, exit_code=None, reason="off")],
        },
        {"name": "code_cleaning", "status": "skipped", "duration": 0.0, "hooks": []},
    ]


def test_an_error_status_in_the_data_wins_over_the_event_kind() -> None:
    script = (
        FAILING_JOB[0],
        hook_start("fast_hooks", "ruff-check", 0.1),
        hook_end(
            E.HOOK_FAILED,
            "fast_hooks",
            "ruff-check",
            "timeout",
            30.0,
            30.1,
            exit_code=None,
            reason="timed out after 30s",
        ),
        Step(
            E.CONFIG_PHASE_FAILED,
            "config",
            {"phase": "config", "status": "error", "duration": 0.0, "error": "bad key"},
            30.2,
        ),
        Step(
            E.WORKFLOW_FAILED,
            None,
            {
                "workflow": "standard_quality",
                "status": "error",
                "duration": 30.3,
                "reason": "x",
                "exit_code": 2,
            },
            30.3,
        ),
    )
    doc = build_result(events(script))
    assert doc["status"] == "error"
    assert doc["phases"][0]["hooks"][0]["status"] == "timeout"
    assert doc["phases"][1] == {"name": "config", "status": "error", "duration": 0.0, "hooks": []}


def test_failed_cases_are_always_listed_and_every_case_only_when_asked_for() -> None:
    stream = events()
    assert "all_cases" not in build_result(stream)["tests"]
    assert build_result(stream)["tests"]["cases"] == [BROKEN_CASE]
    cases = build_result(stream, test_cases=True)["tests"]["all_cases"]
    assert [(c["nodeid"], c["outcome"]) for c in cases] == [
        ("tests/test_app.py::test_add", "passed"),
        ("tests/test_app.py::test_broken", "failed"),
        ("tests/test_app.py::TestUi::test_skip", "skipped"),
        ("tests/test_app.py::test_sub", "passed"),
    ]
    assert cases[1] == BROKEN_CASE


def test_the_document_converts_into_the_typed_description() -> None:
    doc = build_result(events(), test_cases=True)
    typed = msgspec.convert(doc, Result)
    assert msgspec.to_builtins(typed) == doc


def test_the_published_schema_is_an_object_schema_that_rejects_a_wrong_document() -> None:
    assert RESULT_SCHEMA["type"] == "object"
    assert set(RESULT_SCHEMA["required"]) == {
        "schema",
        "job_id",
        "workflow",
        "project",
        "status",
        "duration",
        "phases",
        "tests",
    }
    jsonschema.Draft202012Validator.check_schema(RESULT_SCHEMA)
    doc = build_result(events())
    VALIDATOR.validate(doc)
    broken = copy.deepcopy(doc)
    broken["phases"][1]["hooks"][1]["status"] = "exploded"
    assert not VALIDATOR.is_valid(broken)
    del broken["tests"]
    assert not VALIDATOR.is_valid(broken)


def test_an_empty_stream_gives_an_empty_running_document() -> None:
    assert build_result([]) == {
        "schema": "spruce.result/1",
        "job_id": "",
        "workflow": "",
        "project": "",
        "status": "running",
        "duration": 0.0,
        "phases": [],
        "tests": NO_TESTS,
    }


def test_findings_keep_exactly_the_finding_fields() -> None:
    odd = {**RUFF_F401, "severity": "catastrophic", "fix": {"edits": []}}
    stream = [
        *events(FAILING_JOB[:1]),
        Event(
            event=E.HOOK_FAILED,
            job_id="k3x9",
            seq=2,
            step_id="fast_hooks/ruff-check",
            timestamp=T0 + 1,
            data={
                **hook_end(
                    E.HOOK_FAILED, "fast_hooks", "ruff-check", "failed", 1.0, 1.0, details=[odd]
                ).data
            },
        ),
    ]
    (found,) = build_result(stream)["phases"][0]["hooks"][0]["findings"]
    assert found == {**RUFF_F401, "severity": "warning"}


def test_a_view_can_time_running_work_up_to_now_but_not_a_finished_job() -> None:
    stream = events()
    cut = index_of(E.HOOK_STARTED, "comprehensive_hooks/bandit") + 1
    running = ResultBuilder()
    for event in stream[:cut]:
        running.add(event)
    doc = running.result(now=T0 + 5.09)
    assert doc["duration"] == pytest.approx(5.09)
    assert doc["phases"][-1]["duration"] == pytest.approx(5.01)
    assert [h["duration"] for h in doc["phases"][-1]["hooks"]] == pytest.approx([5.0, 5.0])
    finished = ResultBuilder()
    for event in stream:
        finished.add(event)
    assert finished.result(now=T0 + 99) == build_result(stream)
