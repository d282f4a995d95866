"""The differential harness on every sdist it knows: per tool, what the tool reported directly
and what spruce reported (total and listed), and pytest's failed tests on both sides.

Run: python bench/differential.py   (sdists and their environments are cached, see harness.py)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.differential.harness import compare, pytest_counts
from tests.differential.test_differential import EVERY


def main() -> int:
    unequal = 0
    for sdist in EVERY:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            result = compare(sdist, Path(tmp))
            took = time.monotonic() - started
        print(f"{sdist.name} {sdist.version} ({took:.0f} s)")
        for tool in result.tools:
            print(f"  {'equal' if tool.equal else 'DIFFERENT'}  {tool.describe()}")
            unequal += not tool.equal
        counts = pytest_counts(result.pytest_summary)
        same_counts = {key: result.spruce_tests[key] for key in counts} == counts
        same = sorted(result.spruce_failed) == sorted(result.pytest_failed) and same_counts
        unequal += not same
        print(
            f"  {'equal' if same else 'DIFFERENT'}  pytest failed: direct "
            f"{len(result.pytest_failed)}, spruce {len(result.spruce_failed)}; "
            f"pytest says: {result.pytest_summary.strip()}; spruce: {result.spruce_tests}"
        )
        if not same:
            direct, spruce = set(result.pytest_failed), set(result.spruce_failed)
            print(f"    only direct: {sorted(direct - spruce)[:5]}")
            print(f"    only spruce: {sorted(spruce - direct)[:5]}")
    return 1 if unequal else 0


if __name__ == "__main__":
    sys.exit(main())
