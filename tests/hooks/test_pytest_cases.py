"""Failed tests with real pytest: each case named by its nodeid and located at the line that
failed, in JSON, SARIF, GitHub and JUnit; xfail and xpass counted apart from skips; a module that
cannot be collected says why."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.report.test_many_findings import SPRUCE_RUN, spruce_run

pytestmark = pytest.mark.slow

SARIF_SCHEMA = json.loads(
    (Path(__file__).parent.parent / "resources/schemas/sarif-schema-2.1.0.json").read_text()
)

TESTS = """\
import pytest


def double(n):
    return n * 2


@pytest.mark.parametrize("n", [1, 2, 3])
def test_double(n):
    result = double(n)
    assert result == 4  # line 11: fails for n=1 and n=3


def helper(value):
    assert value, "helper refused"  # line 15


def test_through_helper():
    print("noise " * 2000); helper(0)  # captured output: pytest's report, not the traceback


@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False


@pytest.mark.xfail(reason="fixed meanwhile")
def test_fixed_meanwhile():
    assert True


@pytest.mark.skip(reason="not here")
def test_skipped():
    pass


@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")  # line 39


def test_with_broken_fixture(broken):
    pass
"""

FAILING = {
    "tests/test_cases.py::test_double[1]": ("tests/test_cases.py", 11, "failed"),
    "tests/test_cases.py::test_double[3]": ("tests/test_cases.py", 11, "failed"),
    "tests/test_cases.py::test_through_helper": ("tests/test_cases.py", 15, "failed"),
    "tests/test_cases.py::test_with_broken_fixture": ("tests/test_cases.py", 39, "error"),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cases") / "p"
    (root / "tests").mkdir(parents=True)
    (root / "tests/test_cases.py").write_text(TESTS)
    # A module skipped whole: one more skip for pytest, not one more test.
    (root / "tests/test_skipped_module.py").write_text(
        'import pytest\n\npytest.skip("not on this box", allow_module_level=True)\n'
    )
    (root / "pyproject.toml").write_text('[project]\nname = "cases"\nversion = "0"\n')
    return root


@pytest.fixture(scope="module")
def uncollectable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("collect") / "p"
    (root / "tests").mkdir(parents=True)
    (root / "tests/test_import.py").write_text(
        "import os\nimport no_such_module_here\n\n\ndef test_x():\n    pass\n"
    )
    (root / "pyproject.toml").write_text('[project]\nname = "collect"\nversion = "0"\n')
    return root


def spruce_tests(project: Path, fmt: str) -> str:
    return spruce_run(project, fmt, workflow="tests")


def test_json_lists_each_failed_case_at_its_failing_line(project: Path) -> None:
    document = json.loads(spruce_tests(project, "json"))
    tests = document["tests"]
    counts = {key: tests[key] for key in ("passed", "failed", "skipped", "errors", "xfailed")}
    assert counts == {"passed": 1, "failed": 3, "skipped": 2, "errors": 1, "xfailed": 1}
    assert (tests["xpassed"], tests["total"], tests["collection_errors"]) == (1, 8, 0)
    cases = {case["nodeid"]: case for case in tests["cases"]}
    assert {n: (c["path"], c["line"], c["outcome"]) for n, c in cases.items()} == FAILING
    assert cases["tests/test_cases.py::test_double[1]"]["message"].startswith("assert 2 == 4")
    assert "fixture broke" in cases["tests/test_cases.py::test_with_broken_fixture"]["message"]
    helper = cases["tests/test_cases.py::test_through_helper"]["longrepr"]
    assert "helper(0)" in helper and "helper refused" in helper and len(helper) < 5000
    assert "noise" not in helper.replace('print("noise "', "")
    assert all(c["duration"] >= 0 for c in cases.values())
    pytest_hook = document["phases"][-1]["hooks"][0]
    found = {
        (f["message"].partition(": ")[0], f["path"], f["line"], f["code"])
        for f in pytest_hook["findings"]
    }
    assert found == {
        (n, path, line, "test-failed" if outcome == "failed" else "test-error")
        for n, (path, line, outcome) in FAILING.items()
    }


def test_sarif_points_each_failed_case_at_its_failing_line(project: Path) -> None:
    log = json.loads(spruce_tests(project, "sarif"))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    (run,) = [r for r in log["runs"] if r["tool"]["driver"]["name"] == "pytest"]
    located = {
        (
            r["message"]["text"].partition(": ")[0],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in run["results"]
    }
    assert located == {(n, path, line) for n, (path, line, _) in FAILING.items()}


def test_github_annotates_each_failed_case_at_its_failing_line(project: Path) -> None:
    lines = spruce_tests(project, "github").splitlines()
    annotations = [line for line in lines if "title=test-" in line]
    assert len(annotations) == len(FAILING)
    for nodeid, (path, line, _) in FAILING.items():
        (annotation,) = [a for a in annotations if f"::{nodeid}: " in a]
        assert f"file={path},line={line}," in annotation


def test_junit_names_each_case_with_its_failing_line_and_traceback(project: Path) -> None:
    root = ET.fromstring(spruce_tests(project, "junit"))
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "tests")
    cases = {
        f"{c.get('file')}::{c.get('name')}": c
        for c in suite.iter("testcase")
        if c.get("classname") != "spruce.tests"
    }
    assert len(cases) == 9  # the eight tests and the module skipped whole, as pytest's junitxml
    for nodeid, (path, line, outcome) in FAILING.items():
        case = cases[path + "::" + nodeid.rpartition("::")[2]]
        assert case.get("line") == str(line)
        failure = case.find("failure" if outcome == "failed" else "error")
        assert failure is not None and failure.text
    helper = cases["tests/test_cases.py::test_through_helper"].find("failure")
    assert helper is not None and helper.text is not None and "helper(0)" in helper.text
    skipped = [name for name, c in cases.items() if c.find("skipped") is not None]
    assert sorted(skipped) == [
        "tests/test_cases.py::test_known_bug",
        "tests/test_cases.py::test_skipped",
        "tests/test_skipped_module.py::tests.test_skipped_module",
    ]


def collection_error(document: dict[str, Any]) -> dict[str, Any]:
    (case,) = document["tests"]["cases"]
    return dict(case)


def test_a_collection_error_says_its_cause_in_every_format(uncollectable: Path) -> None:
    cause = "ModuleNotFoundError: No module named 'no_such_module_here'"
    document = json.loads(spruce_tests(uncollectable, "json"))
    tests = document["tests"]
    assert (tests["total"], tests["errors"], tests["collection_errors"]) == (0, 1, 1)
    case = collection_error(document)
    assert (case["nodeid"], case["path"], case["line"]) == (
        "tests/test_import.py",
        "tests/test_import.py",
        2,
    )
    assert case["message"] == f"collection error: {cause}"

    text = spruce_tests(uncollectable, "text")
    assert cause in text
    assert "tests: 0 passed, 0 failed, 0 skipped, 0 errors of 0; 1 module could not be" in text
    assert cause in spruce_tests(uncollectable, "sarif")
    assert cause in spruce_tests(uncollectable, "github")
    junit = ET.fromstring(spruce_tests(uncollectable, "junit"))
    errors = [c.find("error") for c in junit.iter("testcase")]
    assert any(e is not None and cause in (e.get("message") or "") for e in errors)


def test_a_conftest_that_cannot_be_imported_leads_its_reason_with_the_cause(
    tmp_path: Path,
) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/conftest.py").write_text("import no_such_plugin_module\n")
    (tmp_path / "tests/test_x.py").write_text("def test_x():\n    pass\n")
    run = subprocess.run(
        [*SPRUCE_RUN, str(tmp_path), "--workflow", "tests", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=100,
        start_new_session=True,
        check=False,
    )
    (hook,) = json.loads(run.stdout)["phases"][-1]["hooks"]
    assert hook["status"] == "error"
    first = hook["reason"].splitlines()[0]
    assert first.startswith("ImportError while loading conftest")
    assert first.endswith("ModuleNotFoundError: No module named 'no_such_plugin_module'")
