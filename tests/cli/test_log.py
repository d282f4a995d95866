"""`spruce jobs`, `events`, `watch` and `gc` on a SQLite file another process writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spruce.cli import main

WRITER = Path(__file__).parents[1] / "store" / "publish_job.py"


def spruce(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "spruce", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_job(url: str, job_id: str, count: int, pause_every: int = 0) -> None:
    subprocess.run(
        [sys.executable, str(WRITER), url, job_id, str(count), str(pause_every)],
        check=True,
        timeout=60,
    )


def test_help_prints_every_command_and_no_warning() -> None:
    result = spruce("--help")
    assert result.returncode == 0
    assert result.stderr == ""
    for command in ("run", "serve", "mcp", "jobs", "events", "watch", "gc"):
        assert command in result.stdout


def test_jobs_json_lists_the_stored_jobs_newest_first(sqlite_url: str) -> None:
    write_job(sqlite_url, "first", 4)
    write_job(sqlite_url, "second", 4)
    result = spruce("jobs", "--json", "--store", sqlite_url)
    assert result.returncode == 0, result.stderr
    jobs = json.loads(result.stdout)
    assert [(j["job_id"], j["status"], j["workflow"]) for j in jobs] == [
        ("second", "passed", "standard_quality"),
        ("first", "passed", "standard_quality"),
    ]


def test_events_json_prints_one_event_per_line_after_the_cursor(sqlite_url: str) -> None:
    write_job(sqlite_url, "j", 10)
    result = spruce("events", "j", "--after", "6", "--json", "--store", sqlite_url)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["seq"] for e in lines] == [7, 8, 9, 10]
    assert lines[-1]["event"] == "workflow_completed"
    assert set(lines[0]) == {"event", "job_id", "seq", "step_id", "timestamp", "data"}


def test_watch_follows_a_job_another_process_is_running_until_its_end(sqlite_url: str) -> None:
    write_job(sqlite_url, "starter", 2)  # creates the file so the watcher can open it
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), sqlite_url, "live", "300", "10"], start_new_session=True
    )
    try:
        while spruce("events", "live", "--store", sqlite_url).returncode != 0:
            pass
        result = spruce("watch", "live", "--json", "--store", sqlite_url)
    finally:
        writer.wait(timeout=60)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == list(range(1, 301))


def test_an_unknown_job_or_a_bad_cursor_is_a_usage_error(sqlite_url: str) -> None:
    write_job(sqlite_url, "j", 3)
    unknown = spruce("events", "ghost", "--store", sqlite_url)
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert "ghost" in unknown.stderr
    bad = spruce("watch", "j", "--after", "-1", "--store", sqlite_url)
    assert bad.returncode == 2
    assert "--after" in bad.stderr


def test_a_bad_store_url_is_a_usage_error_naming_it() -> None:
    result = spruce("jobs", "--store", "ftp://nowhere")
    assert result.returncode == 2
    assert "ftp://nowhere" in result.stderr


def test_gc_keeps_the_newest_jobs(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b", "c"):
        write_job(sqlite_url, name, 3)
    assert main(["gc", "--keep-jobs", "1", "--store", sqlite_url]) == 0
    assert capsys.readouterr().out.strip() == "removed 2 jobs, 6 events"
    assert main(["jobs", "--json", "--store", sqlite_url]) == 0
    assert [j["job_id"] for j in json.loads(capsys.readouterr().out)] == ["c"]


def test_events_into_a_pipe_closed_early_end_quietly(sqlite_url: str) -> None:
    write_job(sqlite_url, "long", 3000)
    reader = subprocess.Popen(
        [sys.executable, "-m", "spruce", "events", "long", "--json", "--store", sqlite_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert reader.stdout is not None and reader.stderr is not None
    first = reader.stdout.readline()
    reader.stdout.close()  # like `| head -1`
    code = reader.wait(timeout=60)
    errors = reader.stderr.read().decode()
    reader.stderr.close()
    assert json.loads(first)["seq"] == 1
    assert "Traceback" not in errors
    assert code == 141


def test_jobs_columns_stay_aligned_with_long_ids(sqlite_url: str) -> None:
    long_id = "nightly-build-" + "x" * 40
    write_job(sqlite_url, "j", 4)
    write_job(sqlite_url, long_id, 4)
    result = spruce("jobs", "--store", sqlite_url)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert [row.split()[0] for row in rows] == [long_id, "j"]
    status_column = header.index("STATUS")
    assert status_column > len(long_id)
    for row in rows:
        assert row[status_column:].startswith("passed"), (header, row)
        assert row.index("standard_quality") == header.index("WORKFLOW")
