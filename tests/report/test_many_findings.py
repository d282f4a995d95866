"""A hook with more findings than a report lists: every format tells the true count.

The projects are made here: a text file with N lines that end in a space gives N findings of the
in-process `trailing-whitespace` hook, run by a real `spruce run` process.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from spruce.report.result import RESULT_SCHEMA

pytestmark = pytest.mark.slow

SARIF_SCHEMA = json.loads(
    (Path(__file__).parent.parent / "resources/schemas/sarif-schema-2.1.0.json").read_text()
)
SPRUCE_RUN = (sys.executable, "-m", "spruce", "run", "--store", "memory://", "--no-cache")
FINDINGS = 1500
HOOK = "trailing-whitespace"


def project_with_findings(root: Path, count: int, *, max_findings: int | None = None) -> Path:
    """A project whose one text file gives `count` trailing-whitespace findings."""
    root.mkdir()
    (root / "notes.txt").write_text("".join(f"line {n} \n" for n in range(count)))
    table = "[tool.spruce]\n"
    if max_findings is not None:
        table += f"max_findings = {max_findings}\n"
    (root / "pyproject.toml").write_text('[project]\nname = "many"\nversion = "0"\n\n' + table)
    return root


def spruce_run(project: Path, fmt: str, *, workflow: str = "fast") -> str:
    """`spruce run --workflow W --format FMT` on `project`; its stdout (exit 1: findings)."""
    run = subprocess.run(
        [*SPRUCE_RUN, str(project), "--workflow", workflow, "--format", fmt],
        capture_output=True,
        text=True,
        timeout=100,
        start_new_session=True,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    return run.stdout


def hook_of(document: dict[str, Any], hook_id: str) -> dict[str, Any]:
    hooks = [h for phase in document["phases"] for h in phase["hooks"] if h["id"] == hook_id]
    assert len(hooks) == 1
    hook: dict[str, Any] = hooks[0]
    return hook


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 findings, all kept (below the default bound)."""
    return project_with_findings(tmp_path_factory.mktemp("all") / "p", FINDINGS)


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 findings with `max_findings = 1000`: 500 are counted but not kept."""
    return project_with_findings(tmp_path_factory.mktemp("cut") / "p", FINDINGS, max_findings=1000)


def test_json_counts_every_finding_and_says_when_the_list_is_cut(listed: Path, cut: Path) -> None:
    whole = json.loads(spruce_run(listed, "json"))
    jsonschema.Draft202012Validator(RESULT_SCHEMA).validate(whole)
    hook = hook_of(whole, HOOK)
    assert (hook["findings_total"], hook["findings_truncated"]) == (FINDINGS, False)
    assert [f["line"] for f in hook["findings"]] == list(range(1, FINDINGS + 1))

    part = json.loads(spruce_run(cut, "json"))
    hook = hook_of(part, HOOK)
    assert (hook["findings_total"], hook["findings_truncated"]) == (FINDINGS, True)
    assert [f["line"] for f in hook["findings"]] == list(range(1, 1001))


def test_text_lists_a_few_and_counts_the_rest(listed: Path) -> None:
    text = spruce_run(listed, "text")
    lines = text.splitlines()
    (row,) = [line for line in lines if line.strip().startswith(HOOK)]
    assert "1500 findings" in row
    listed_findings = [line for line in lines if "notes.txt:" in line]
    assert len(listed_findings) == 20
    assert f"    … and {FINDINGS - 20} more" in lines
    assert re.fullmatch(r"\d+ hooks: .*failed.* in \d+\.\d\ds", lines[-1])


def test_a_text_report_of_3000_findings_stays_short(tmp_path: Path) -> None:
    project = project_with_findings(tmp_path / "p", 3000)
    # …and 3,000 of ruff's (an unused import per line) besides the whitespace.
    (project / "imports.py").write_text("".join(f"import m{n}\n" for n in range(3000)))
    text = spruce_run(project, "text")
    assert len(text.splitlines()) <= 300
    assert "… and 2980 more" in text


@pytest.mark.parametrize("project", ["listed", "cut"])
def test_sarif_holds_each_kept_finding_and_notifies_the_rest(
    project: str, request: pytest.FixtureRequest
) -> None:
    log = json.loads(spruce_run(request.getfixturevalue(project), "sarif"))
    jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        log
    )
    (run,) = [r for r in log["runs"] if r["tool"]["driver"]["name"] == "spruce"]
    kept = FINDINGS if project == "listed" else 1000
    assert len(run["results"]) == kept
    if project == "listed":
        assert "invocations" not in run
        return
    (invocation,) = run["invocations"]
    (note,) = invocation["toolExecutionNotifications"]
    assert note["properties"] == {"hook": HOOK, "findingsTotal": 1500, "findingsListed": 1000}
    assert "reported 1500 findings" in note["message"]["text"]
    assert "500 more" in note["message"]["text"]


@pytest.mark.parametrize("project", ["listed", "cut"])
def test_github_annotates_each_kept_finding_and_notes_the_rest(
    project: str, request: pytest.FixtureRequest
) -> None:
    lines = spruce_run(request.getfixturevalue(project), "github").splitlines()
    annotations = [line for line in lines if line.startswith("::") and "file=notes.txt" in line]
    notices = [line for line in lines if "findings truncated" in line]
    if project == "listed":
        assert (len(annotations), notices) == (FINDINGS, [])
        return
    assert len(annotations) == 1000
    (notice,) = notices
    assert notice.startswith("::notice title=spruce%3A trailing-whitespace findings truncated::")
    assert notice.endswith("reported 1500 findings; 1000 are annotated here, 500 more are not")


@pytest.mark.parametrize("project", ["listed", "cut"])
def test_junit_states_the_true_count(project: str, request: pytest.FixtureRequest) -> None:
    root = ET.fromstring(spruce_run(request.getfixturevalue(project), "junit"))
    (case,) = [c for c in root.iter("testcase") if c.get("name") == HOOK]
    failure = case.find("failure")
    assert failure is not None and failure.text is not None
    assert failure.get("message") == "1500 findings"
    body = failure.text.splitlines()
    if project == "listed":
        assert len(body) == FINDINGS
    else:
        assert len(body) == 1001 and body[-1] == "… and 500 more"
