"""The pytest hook's per-test events: every test once, in order, while the suite still runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.runner import run_workflow

pytestmark = pytest.mark.anyio

SUITE = """\
import time

import pytest


@pytest.mark.parametrize("n", range(600))
def test_quick(n):
    # long failure messages make reports that straddle the reader's 64 KB reads
    assert n % 100 != 7, "x" * 1500


def test_zz_slow_last():
    time.sleep(1.5)
"""


async def test_every_fast_test_is_reported_once_in_order_and_before_the_suite_ends(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_many.py").write_text(SUITE)
    outcome, events = await run_workflow(tmp_path, workflow="tests")

    cases = [e for e in events if e.event.value == "test_case_completed"]
    assert [e.data["nodeid"] for e in cases] == [
        *(f"test_many.py::test_quick[{n}]" for n in range(600)),
        "test_many.py::test_zz_slow_last",
    ]
    assert [e.data["done"] for e in cases] == list(range(1, 602))
    failed = [e.data["nodeid"] for e in cases if e.data["outcome"] == "failed"]
    assert failed == [f"test_many.py::test_quick[{n}]" for n in range(7, 600, 100)]
    assert all(len(e.data["message"]) > 1000 for e in cases if e.data["outcome"] == "failed")
    # The quick tests were published live, not held back until the slow one ended.
    assert cases[-1].timestamp - cases[-2].timestamp > 1.0
    assert outcome.exit_code == 1


def test_the_hook_names_the_plugin_s_pipe_variable_without_importing_the_plugin() -> None:
    from spruce.hooks import pytest as hook
    from spruce.hooks import pytest_plugin

    assert hook._PLUGIN_FD_ENV == pytest_plugin.ENV_FD
    assert hook._SHARD_ENV == pytest_plugin.ENV_SHARD
    assert hook._PLUGIN_SOURCE.read_text() == Path(pytest_plugin.__file__).read_text()
