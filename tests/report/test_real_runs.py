"""Every report format, and the plain progress lines, from real `spruce run` processes on the
sample projects with the real tools."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from spruce.report.result import RESULT_SCHEMA

pytestmark = pytest.mark.slow

PROJECTS = Path(__file__).parent.parent / "resources/projects"
SARIF_SCHEMA = json.loads(
    (Path(__file__).parent.parent / "resources/schemas/sarif-schema-2.1.0.json").read_text()
)


def spruce_run(tmp_path: Path, project: str, fmt: str) -> subprocess.CompletedProcess[str]:
    """`spruce run` on a fresh copy of a sample project, stderr not a TTY (plain progress)."""
    copy = tmp_path / project
    shutil.copytree(PROJECTS / project, copy)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "spruce",
            "run",
            str(copy),
            "--store",
            "memory://",
            "--no-cache",
            "--format",
            fmt,
        ],
        capture_output=True,
        text=True,
        timeout=100,
        start_new_session=True,
        check=False,
    )


def test_sarif_of_a_lint_defect_is_valid_and_points_at_it(tmp_path: Path) -> None:
    run = spruce_run(tmp_path, "lint", "sarif")
    assert run.returncode == 1, run.stderr
    log = json.loads(run.stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        log
    )
    ruff = next(r for r in log["runs"] if r["tool"]["driver"]["name"] == "ruff")
    (result,) = [r for r in ruff["results"] if r["ruleId"] == "F401"]
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "tool.py", "uriBaseId": "PROJECTROOT"},
        "region": {"startLine": 1, "startColumn": 8},
    }
    assert ruff["originalUriBaseIds"]["PROJECTROOT"]["uri"] == (tmp_path / "lint").as_uri() + "/"


def test_json_of_a_real_run_matches_the_published_schema(tmp_path: Path) -> None:
    run = spruce_run(tmp_path, "type_error", "json")
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    jsonschema.Draft202012Validator(RESULT_SCHEMA).validate(doc)
    assert doc["status"] == "failed"
    hooks = {h["id"]: h for p in doc["phases"] for h in p["hooks"]}
    (found,) = hooks["mypy"]["findings"]
    assert (found["path"], found["line"], found["code"]) == ("typed.py", 2, "return-value")


def test_junit_of_a_failing_test_lists_each_test_and_plain_progress_names_it(
    tmp_path: Path,
) -> None:
    run = spruce_run(tmp_path, "failing_test", "junit")
    assert run.returncode == 1, run.stderr
    root = ET.fromstring(run.stdout.encode())
    tests = next(s for s in root.iter("testsuite") if s.get("name") == "tests")
    cases = {c.get("name"): c for c in tests.iter("testcase")}
    assert cases["test_add_wrong"].get("classname") == "tests.test_calc"
    failure = cases["test_add_wrong"].find("failure")
    assert failure is not None
    assert failure.get("message") == "assert 4 == 5"
    passed = [c for c in tests.iter("testcase") if not list(c)]
    assert len(passed) == 1
    # Progress went to stderr as plain lines (no TTY), the failing test among them.
    assert "FAILED tests/test_calc.py::test_add_wrong: assert 4 == 5" in run.stderr.splitlines()
    assert "\x1b[" not in run.stderr


def test_github_annotations_of_a_real_run(tmp_path: Path) -> None:
    run = spruce_run(tmp_path, "lint", "github")
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert "::error file=tool.py,line=1,col=8,title=F401 (ruff)::`os` imported but unused" in lines
    assert re.fullmatch(r"\d+ hooks: \d+ passed, 2 failed, \d+ skipped in \d+\.\d\ds", lines[-1])
