"""`spruce run` as users call it: exit codes, where output goes, report formats, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.workflow.runner import copy_sample

pytestmark = pytest.mark.slow
SARIF_SCHEMA = next(Path(__file__).resolve().parents[2].glob("**/sarif-schema-2.1.0.json"), None)


def spruce_run(project: Path, *args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPRUCE_CACHE_DIR": str(cache), "SPRUCE_STORE": "memory://"}
    return subprocess.run(
        [sys.executable, "-m", "spruce", "run", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_clean_project_exits_0_with_the_summary_on_stdout(tmp_path: Path) -> None:
    done = spruce_run(copy_sample("clean", tmp_path), "--job-id", "clean-1", cache=tmp_path / "c")
    assert done.returncode == 0, done.stderr
    assert "spruce watch clean-1" in done.stderr
    assert "8675" not in done.stderr  # no server reads a memory:// store
    assert "spruce watch" not in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert " passed" in last and last.split(" in ")[-1].endswith("s")


def test_findings_exit_1_and_the_json_document_matches_the_spec(tmp_path: Path) -> None:
    done = spruce_run(
        copy_sample("lint", tmp_path), "--fast", "--format", "json", cache=tmp_path / "c"
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["schema"] == "spruce.result/1" and result["status"] == "failed"
    assert result["workflow"] == "fast"
    hooks = {h["id"]: h for p in result["phases"] for h in p["hooks"]}
    finding = hooks["ruff-check"]["findings"][0]
    assert (finding["path"], finding["line"], finding["code"]) == ("tool.py", 1, "F401")


def test_sarif_output_validates_against_the_2_1_0_schema(tmp_path: Path) -> None:
    assert SARIF_SCHEMA is not None
    out = tmp_path / "report.sarif"
    done = spruce_run(
        copy_sample("type_error", tmp_path), "--comp", "--format", "sarif", "--output", str(out),
        cache=tmp_path / "c",
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    document = json.loads(out.read_text())
    jsonschema.validate(document, json.loads(SARIF_SCHEMA.read_text()))
    rules = [r["ruleId"] for run in document["runs"] for r in run["results"]]
    assert "return-value" in rules


def test_junit_output_parses_with_one_case_per_test(tmp_path: Path) -> None:
    done = spruce_run(
        copy_sample("failing_test", tmp_path),
        "--skip-hooks",
        "--format",
        "junit",
        cache=tmp_path / "c",
    )
    assert done.returncode == 1
    root = ET.fromstring(done.stdout)
    names = {case.get("name") for case in root.iter("testcase")}
    assert any(name and "test_add_wrong" in name for name in names)
    assert any(case.find("failure") is not None for case in root.iter("testcase"))


def test_a_bad_config_and_a_bad_workflow_exit_2(tmp_path: Path) -> None:
    project = copy_sample("clean", tmp_path)
    with (project / "pyproject.toml").open("a") as handle:
        handle.write("\n[tool.spruce]\nbogus = 1\n")
    done = spruce_run(project, cache=tmp_path / "c")
    assert done.returncode == 2 and "tool.spruce.bogus" in done.stderr
    done = spruce_run(project, "--workflow", "nightly", cache=tmp_path / "c")
    assert done.returncode == 2 and "unknown workflow" in done.stderr
    done = spruce_run(tmp_path / "missing", cache=tmp_path / "c")
    assert done.returncode == 2


def test_sigint_cancels_the_job_with_exit_130_and_no_orphans(tmp_path: Path) -> None:
    project = copy_sample("sleepy", tmp_path)
    pids = tmp_path / "pids.txt"
    env = {
        **os.environ,
        "SPRUCE_CACHE_DIR": str(tmp_path / "c"),
        "SPRUCE_STORE": "memory://",
        "SLEEPY_PIDS": str(pids),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "spruce", "run", str(project), "--skip-hooks", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while (not pids.exists() or len(pids.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert json.loads(out)["status"] == "cancelled"
    from tests.workflow.runner import alive

    assert not [int(pid) for pid in pids.read_text().split() if alive(int(pid))]
