"""The human summary: phases, hooks with status and duration, findings, the closing line."""

from __future__ import annotations

from spruce.report import render
from spruce.report.result import build_result
from spruce.report.text import closing_line, format_finding
from tests.report.streams import FAILING_JOB, E, Step, events, index_of


def test_the_summary_of_a_failing_job() -> None:
    assert render("text", build_result(events())) == (
        "spruce standard_quality: failed (job k3x9, /work/demo project)\n"
        "config                 passed       0.01s\n"
        "fast_hooks             failed       0.06s\n"
        "  trailing-whitespace  passed       0.01s\n"
        "  ruff-check           failed       0.05s  2 findings\n"
        "    src/demo/app.py:2:8 F401 `os` imported but unused\n"
        "    src/demo/app.py:9:5 E741 Ambiguous variable name: `l`\n"
        "  codespell            skipped      0.00s  "
        "codespell is not installed: pip install codespell\n"
        "code_cleaning          skipped      0.00s\n"
        "comprehensive_hooks    failed       1.52s\n"
        "  mypy                 failed       1.50s  1 finding\n"
        "    src/demo/app.py:12:12 return-value "
        'Incompatible return value type (got "str", expected "int")\n'
        "  bandit               passed       0.00s  cached\n"
        "tests                  failed       0.81s\n"
        "  pytest               failed       0.80s  1 finding\n"
        "    tests/test_app.py:7:1 test-failed assert 1 == 2\n"
        "tests: 2 passed, 1 failed, 1 skipped, 0 errors of 4\n"
        "6 hooks: 2 passed, 3 failed, 1 skipped in 2.42s\n"
    )


def test_the_closing_line_of_a_running_and_of_a_cancelled_job() -> None:
    cut = index_of(E.HOOK_STARTED, "comprehensive_hooks/bandit") + 1
    running = build_result(events()[:cut])
    assert closing_line(running) == (
        "5 hooks: 1 passed, 1 failed, 1 skipped, 2 running in 0.09s (running)"
    )
    cancelled = (
        *FAILING_JOB[:cut],
        Step(
            E.WORKFLOW_CANCELLED,
            None,
            {
                "workflow": "standard_quality",
                "status": "cancelled",
                "duration": 0.5,
                "reason": None,
                "exit_code": 130,
            },
            0.5,
        ),
    )
    doc = build_result(events(cancelled))
    assert closing_line(doc) == (
        "5 hooks: 1 passed, 1 failed, 1 skipped, 2 errors in 0.50s (cancelled)"
    )


def test_a_job_that_ran_no_hook_says_so() -> None:
    assert closing_line(build_result(events(FAILING_JOB[:4]))) == "no hooks ran in 0.02s (running)"


def test_findings_leave_out_what_the_tool_did_not_give() -> None:
    base = {"path": "a.py", "code": "C", "message": "two\nlines", "severity": "info", "tool": "t"}
    assert format_finding({**base, "line": 3, "column": None}) == "a.py:3 C two …"
    assert format_finding({**base, "line": None, "column": None}) == "a.py C two …"


def test_a_skipped_test_phase_prints_no_empty_tests_line() -> None:
    script = (
        *FAILING_JOB[:1],
        Step(
            E.TEST_PHASE_COMPLETED,
            "tests",
            {
                "phase": "tests",
                "status": "skipped",
                "duration": 0.0,
                "passed": 0,
                "failed": 0,
                "skipped": 0,
                "errors": 0,
                "total": 0,
            },
            0.1,
        ),
    )
    text = render("text", build_result(events(script)))
    assert "tests:" not in text
    assert text.splitlines()[1].split() == ["tests", "skipped", "0.00s"]
