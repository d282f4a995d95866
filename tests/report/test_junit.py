"""JUnit XML: a testsuite per phase, a testcase per hook and per test, failures with messages."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from spruce.report import render
from spruce.report.result import build_result
from tests.report.streams import FAILING_JOB, E, events, finding, hook_end


def parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(text.encode())


def test_suites_follow_phases_and_hooks_become_testcases() -> None:
    root = parse(render("junit", build_result(events())))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["config", "fast_hooks", "code_cleaning", "comprehensive_hooks", "tests"]
    fast = suites["fast_hooks"]
    assert [(c.get("classname"), c.get("name")) for c in fast.findall("testcase")] == [
        ("spruce.fast_hooks", "trailing-whitespace"),
        ("spruce.fast_hooks", "ruff-check"),
        ("spruce.fast_hooks", "codespell"),
    ]
    assert (fast.get("tests"), fast.get("failures"), fast.get("skipped"), fast.get("errors")) == (
        "3",
        "1",
        "1",
        "0",
    )
    ruff = fast.findall("testcase")[1]
    failure = ruff.find("failure")
    assert failure is not None
    assert failure.get("message") == "2 findings"
    assert failure.text == (
        "src/demo/app.py:2:8 F401 `os` imported but unused\n"
        "src/demo/app.py:9:5 E741 Ambiguous variable name: `l`"
    )
    skipped = fast.findall("testcase")[2].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "codespell is not installed: pip install codespell"
    assert ruff.get("time") == "0.050"


def test_each_test_case_is_a_testcase_when_the_document_lists_them() -> None:
    root = parse(render("junit", build_result(events(), test_cases=True)))
    tests = next(s for s in root.findall("testsuite") if s.get("name") == "tests")
    cases = tests.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("spruce.tests", "pytest"),
        ("tests.test_app", "test_add"),
        ("tests.test_app", "test_broken"),
        ("tests.test_app.TestUi", "test_skip"),
        ("tests.test_app", "test_sub"),
    ]
    broken = cases[2]
    assert (broken.get("file"), broken.get("line")) == ("tests/test_app.py", "7")
    failure = broken.find("failure")
    assert failure is not None
    assert failure.get("message") == "assert 1 == 2"
    assert failure.text == "assert 1 == 2\nwhere 1 = add(0, 1)"
    assert (tests.get("tests"), tests.get("failures"), tests.get("skipped")) == ("5", "2", "1")
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("10", "4", "2")


def test_without_every_case_the_failed_tests_are_listed_by_nodeid_and_line() -> None:
    root = parse(render("junit", build_result(events())))
    tests = next(s for s in root.findall("testsuite") if s.get("name") == "tests")
    cases = [(c.get("classname"), c.get("name"), c.get("line")) for c in tests.findall("testcase")]
    assert cases == [("spruce.tests", "pytest", None), ("tests.test_app", "test_broken", "7")]


def test_errors_and_timeouts_are_errors_and_control_characters_are_dropped() -> None:
    script = (
        *FAILING_JOB[:1],
        hook_end(
            E.HOOK_FAILED,
            "fast_hooks",
            "mypy",
            "timeout",
            30.0,
            30.0,
            exit_code=None,
            reason="timed out after 30s",
        ),
        hook_end(
            E.HOOK_FAILED,
            "fast_hooks",
            "bandit",
            "failed",
            1.0,
            31.0,
            exit_code=1,
            details=[
                finding("a.py", 1, 1, "B101", "\x1b[31massert\x1b[0m used <&>", tool="bandit")
            ],
        ),
    )
    root = parse(render("junit", build_result(events(script))))
    timeout, bandit = root.iter("testcase")
    error = timeout.find("error")
    assert error is not None
    assert (error.get("type"), error.get("message")) == ("timeout", "timed out after 30s")
    failure = bandit.find("failure")
    assert failure is not None
    assert failure.text == "a.py:1:1 B101 [31massert[0m used <&>"
