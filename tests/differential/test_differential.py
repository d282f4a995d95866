"""spruce's findings on real sdists equal the tools run directly (see `harness.py`).

requests runs in every test run; attrs and rich too when SPRUCE_DIFFERENTIAL=all
(`bench/differential.py` runs all three and prints the figures).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import pytest

from tests.differential.harness import Comparison, Sdist, compare, pytest_counts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ATTRS: Final = Sdist("attrs", "25.4.0", test_needs=("hypothesis==6.*",))
RICH: Final = Sdist("rich", "14.2.0")
REQUESTS: Final = Sdist(
    "requests",
    "2.32.5",
    test_needs=("pytest-mock", "trustme"),
    pytest_args=("tests/test_spruce_planted.py", "tests/test_structures.py", "tests/test_utils.py"),
)
EVERY: Final = (ATTRS, RICH, REQUESTS)
_ALL: Final = os.environ.get("SPRUCE_DIFFERENTIAL") == "all"

PLANTED_FAILURES: Final = {
    ("tests/test_spruce_planted.py::test_planted_double[1]", "tests/test_spruce_planted.py", 11),
    ("tests/test_spruce_planted.py::test_planted_double[3]", "tests/test_spruce_planted.py", 11),
    ("tests/test_spruce_planted.py::test_planted_helper", "tests/test_spruce_planted.py", 15),
}


def check(result: Comparison) -> None:
    unequal = [tool.describe() for tool in result.tools if not tool.equal]
    assert not unequal, "\n".join(unequal)
    assert sorted(result.spruce_failed) == sorted(result.pytest_failed), result.pytest_summary
    assert set(result.spruce_failed) >= PLANTED_FAILURES
    assert result.spruce_tests["xfailed"] >= 1 and result.spruce_tests["xpassed"] >= 1
    counts = pytest_counts(result.pytest_summary)
    assert {key: result.spruce_tests[key] for key in counts} == counts, result.pytest_summary


@pytest.mark.parametrize(
    "sdist",
    [
        pytest.param(
            sdist,
            id=sdist.name,
            marks=[]
            if sdist is REQUESTS or _ALL
            else [pytest.mark.skip(reason="set SPRUCE_DIFFERENTIAL=all to run it")],
        )
        for sdist in EVERY
    ],
)
def test_spruce_finds_what_the_tools_find(sdist: Sdist, tmp_path: Path) -> None:
    check(compare(sdist, tmp_path))
