"""`spruce stats`: the known log's insights as JSON and as aligned text, from a SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from spruce.cli import main
from spruce.store import open_store
from tests.stats_log import EXPECTED_FLAKY, EXPECTED_MYPY, PROJECT, fill_known_log


def _known_sqlite(tmp_path: Path) -> str:
    url = f"sqlite://{tmp_path / 'events.db'}?keep_days=none&keep_jobs=none"

    async def fill() -> None:
        log = open_store(url)
        await log.open()
        try:
            await fill_known_log(log)
        finally:
            await log.aclose()

    asyncio.run(fill())
    return url


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPRUCE_CACHE_DIR", str(tmp_path / "cache"))


def test_stats_json_is_the_stats_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _known_sqlite(tmp_path)
    assert main(["stats", PROJECT, "--json", "--store", url]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["schema"], stats["project"], stats["jobs"]) == ("spruce.stats/1", PROJECT, 6)
    assert next(hook for hook in stats["hooks"] if hook["id"] == "mypy") == EXPECTED_MYPY
    assert stats["flaky_tests"] == EXPECTED_FLAKY
    assert (tmp_path / "cache" / "insights.db").is_file()  # the summaries are kept
    assert main(["stats", PROJECT, "--json", "--jobs", "2", "--store", url]) == 0
    assert json.loads(capsys.readouterr().out)["jobs"] == 2


def test_stats_text_shows_aligned_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _known_sqlite(tmp_path)
    assert main(["stats", PROJECT, "--store", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"spruce stats: 6 finished job(s) of {PROJECT}\n")
    lines = out.splitlines()
    mypy = next(line for line in lines if line.startswith("mypy "))
    assert mypy.split() == [
        "mypy", "comprehensive_hooks", "6", "1.50s", "2.00s", "0.50s", "0%", "17%", "2.00x"
    ]  # fmt: skip
    header = next(line for line in lines if line.startswith("HOOK "))
    assert header.index("P50") + 3 == mypy.index("1.50s") + 5  # numbers end under their header
    flaky = next(line for line in lines if "test_flaky" in line and "job3" in line)
    assert flaky.split() == ["tests/test_a.py::test_flaky", "2", "1", "job3"]


def test_stats_of_a_project_without_jobs_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _known_sqlite(tmp_path)
    assert main(["stats", str(tmp_path), "--store", url]) == 0
    assert "0 finished job(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["stats", "--jobs", "0", "--store", url])
