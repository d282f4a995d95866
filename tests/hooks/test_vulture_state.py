"""vulture keeps each file's scan in spruce's state directory: after an edit it re-reads only the
edited file, and its findings stay exactly those of vulture run directly, also when the edit
makes dead code in another file live or dead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from tests.workflow.runner import hook_ends, run_workflow

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

_CONFIG: Final = """\
[tool.spruce.hooks.mypy]
enabled = false
[tool.spruce.hooks.bandit]
enabled = false
"""
FILES: Final = {
    "pyproject.toml": _CONFIG,
    "pkg/__init__.py": "",
    "pkg/helpers.py": "import os\n\n\ndef helper():\n    return 1\n    print('never')\n",
    "pkg/main.py": "from pkg.helpers import helper\n\n\ndef main():\n    return helper()\n",
    "pkg/other.py": "def other():\n    return 2\n",
}


def _direct(project: Path) -> set[tuple[str, int, str]]:
    run = subprocess.run(
        [sys.executable, "-m", "vulture", "--min-confidence", "80", "pkg"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = set()
    for line in run.stdout.splitlines():
        path, number, message = line.split(":", 2)
        found.add((path, int(number), message.strip().split(" (")[0]))
    return found


async def _spruce(project: Path, cache: Path) -> set[tuple[str, int, str]]:
    _, events = await run_workflow(project, workflow="comprehensive", cache_dir=cache)
    end = hook_ends(events)["comprehensive_hooks/vulture"]
    return {(d["path"], d["line"], d["message"].split(" (")[0]) for d in end.data["details"]}


def _kept(cache: Path) -> dict[Path, int]:
    return {
        entry: entry.stat().st_mtime_ns for entry in cache.rglob("vulture/*") if entry.is_file()
    }


async def test_an_edit_rescans_one_file_and_finds_what_vulture_finds(tmp_path: Path) -> None:
    project = tmp_path / "p"
    for name, text in FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    cache = tmp_path / "cache"
    first = await _spruce(project, cache)
    assert first == _direct(project) and len(first) == 2  # unused import, unreachable code
    before = _kept(cache)
    assert len(before) == 4  # one entry per file
    # main.py stops using helper (now dead) and imports something unused itself.
    (project / "pkg/main.py").write_text("import csv\n\n\ndef main():\n    return 0\n")
    second = await _spruce(project, cache)
    assert second == _direct(project) and len(second) == 3
    after = _kept(cache)
    assert set(after) == set(before)
    rewritten = [entry for entry in after if after[entry] != before[entry]]
    assert len(rewritten) == 1  # main.py's entry, and only it
