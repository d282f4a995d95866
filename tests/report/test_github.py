"""GitHub Actions workflow commands: one annotation per finding, escaped as @actions/core does."""

from __future__ import annotations

from spruce.report import render
from spruce.report.github import command, escape_data, escape_property
from spruce.report.result import build_result
from tests.report.streams import FAILING_JOB, E, events, finding, hook_end


def test_messages_escape_percent_and_line_breaks() -> None:
    assert escape_data("50% done\r\nnext: a,b") == "50%25 done%0D%0Anext: a,b"


def test_properties_also_escape_colons_and_commas() -> None:
    assert escape_property("C:\\x,y%\n") == "C%3A\\x%2Cy%25%0A"


def test_a_command_leaves_out_missing_properties() -> None:
    assert command("error", "m", file="a.py", line=3, col=None, title="T") == (
        "::error file=a.py,line=3,title=T::m"
    )
    assert command("notice", "hello") == "::notice::hello"


def test_every_finding_is_annotated_and_the_closing_line_ends_the_output() -> None:
    assert render("github", build_result(events())) == (
        "::error file=src/demo/app.py,line=2,col=8,title=F401 (ruff)::`os` imported but unused\n"
        "::warning file=src/demo/app.py,line=9,col=5,title=E741 (ruff)::"
        "Ambiguous variable name: `l`\n"
        "::error file=src/demo/app.py,line=12,col=12,title=return-value (mypy)::"
        'Incompatible return value type (got "str", expected "int")\n'
        "::error file=tests/test_app.py,line=7,col=1,title=test-failed (pytest)::assert 1 == 2\n"
        "6 hooks: 2 passed, 3 failed, 1 skipped in 2.42s\n"
    )


def test_hostile_paths_and_messages_cannot_break_out_of_the_command() -> None:
    item = finding(
        "a,b:c.py", 1, 2, "X:1", "first\nsecond ::error::fake", severity="info", tool="t"
    )
    script = (
        *FAILING_JOB[:1],
        hook_end(E.HOOK_FAILED, "fast_hooks", "t", "failed", 0.1, 0.1, details=[item]),
        hook_end(
            E.HOOK_FAILED,
            "fast_hooks",
            "crashy",
            "error",
            0.1,
            0.2,
            exit_code=2,
            reason="Traceback:\n  boom",
        ),
    )
    lines = render("github", build_result(events(script))).splitlines()
    assert lines[:2] == [
        "::notice file=a%2Cb%3Ac.py,line=1,col=2,title=X%3A1 (t)::first%0Asecond ::error::fake",
        "::error title=spruce%3A crashy error::Traceback:%0A  boom",
    ]
