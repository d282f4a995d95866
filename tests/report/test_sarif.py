"""SARIF output: valid against the official 2.1.0 schema, one run per tool, relative locations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from spruce.report import render
from spruce.report.result import build_result
from tests.report.streams import FAILING_JOB, E, Step, events, finding, hook_end

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "resources/schemas/sarif-schema-2.1.0.json").read_text()
)
VALIDATOR = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def sarif_of(doc: dict[str, Any]) -> dict[str, Any]:
    text = render("sarif", doc)
    log: dict[str, Any] = json.loads(text)
    VALIDATOR.validate(log)
    return log


def test_the_schema_is_the_official_one_and_catches_a_broken_log() -> None:
    assert SCHEMA["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    log = sarif_of(build_result(events()))
    log["runs"][0]["results"][0]["level"] = "fatal"
    assert not VALIDATOR.is_valid(log)


def test_each_tool_gets_its_own_run_with_its_rules() -> None:
    log = sarif_of(build_result(events()))
    assert log["version"] == "2.1.0"
    runs = {run["tool"]["driver"]["name"]: run for run in log["runs"]}
    assert list(runs) == ["ruff", "mypy", "pytest"]
    assert runs["ruff"]["tool"]["driver"]["rules"] == [{"id": "F401"}, {"id": "E741"}]
    assert [r["ruleIndex"] for r in runs["ruff"]["results"]] == [0, 1]
    ids = [run["automationDetails"]["id"] for run in log["runs"]]
    assert len(set(ids)) == len(ids)


def test_results_point_at_project_relative_paths_under_projectroot() -> None:
    log = sarif_of(build_result(events()))
    ruff = log["runs"][0]
    first = ruff["results"][0]
    assert first["ruleId"] == "F401"
    assert first["message"] == {"text": "`os` imported but unused"}
    assert first["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "src/demo/app.py", "uriBaseId": "PROJECTROOT"},
                "region": {"startLine": 2, "startColumn": 8},
            }
        }
    ]
    # The base is the project directory as a file URI ending in a slash (spaces encoded).
    assert ruff["originalUriBaseIds"] == {"PROJECTROOT": {"uri": "file:///work/demo%20project/"}}


@pytest.mark.parametrize(
    ("severity", "level"), [("error", "error"), ("warning", "warning"), ("info", "note")]
)
def test_levels_follow_severity(severity: str, level: str) -> None:
    item = finding("a b/c%.py", 3, None, "X1", "m", severity=severity, tool="custom")
    script = (
        *FAILING_JOB[:1],
        hook_end(E.HOOK_FAILED, "fast_hooks", "custom", "failed", 0.1, 0.1, details=[item]),
    )
    (run,) = sarif_of(build_result(events(script)))["runs"]
    (result,) = run["results"]
    assert result["level"] == level
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "a%20b/c%25.py"
    assert location["region"] == {"startLine": 3}


def test_a_finding_without_a_line_has_no_region() -> None:
    item = finding("setup.cfg", None, None, "cfg", "bad", tool="custom")
    script = (
        *FAILING_JOB[:1],
        hook_end(E.HOOK_FAILED, "fast_hooks", "custom", "failed", 0.1, 0.1, details=[item]),
    )
    (run,) = sarif_of(build_result(events(script)))["runs"]
    assert "region" not in run["results"][0]["locations"][0]["physicalLocation"]


def test_a_clean_job_still_has_one_empty_run() -> None:
    script = (
        *FAILING_JOB[:1],
        Step(
            E.WORKFLOW_COMPLETED,
            None,
            {
                "workflow": "fast",
                "status": "passed",
                "duration": 0.1,
                "reason": None,
                "exit_code": 0,
            },
            0.1,
        ),
    )
    log = sarif_of(build_result(events(script)))
    assert [(r["tool"]["driver"]["name"], r["results"]) for r in log["runs"]] == [("spruce", [])]
