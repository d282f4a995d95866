"""What selection records of each test (real pytest through spruce): closures made at import,
generators resumed by a later test, work done on another thread, helpers imported from another
test file and modules a conftest imports are all seen, so a change there re-runs exactly the
tests a full run shows failing. The project's own bytecode stays free of spruce's hits."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import pytest

from spruce.hooks import select_plugin
from tests.workflow.test_selection import Spruce, _edit, _pytest_failures, write_project

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture(autouse=True)
def outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)


LIB: Final = '''\
"""A library whose code runs in the ways a test can reach it."""
import threading


def make_scale(factor):
    def scale(x):
        return x * factor
    return scale


triple = make_scale(3)


def numbers():
    yield 1
    yield 2


counter = numbers()


def work(out):
    out.append(21 * 2)


def in_thread():
    out = []
    thread = threading.Thread(target=work, args=(out,))
    thread.start()
    thread.join()
    return out[0]


def shout(word):
    return word.upper()


def unused():
    return 0
'''
TESTS: Final = """\
from app.lib import counter, in_thread, triple


def test_triple():
    assert triple(2) == 6


def test_first():
    assert next(counter) == 1


def test_second():
    assert next(counter) == 2


def test_thread():
    assert in_thread() == 42
"""
HELPERS_TEST: Final = """\
class _Proxy:  # a lazy object that fails when asked anything
    def __getattribute__(self, name):
        raise RuntimeError(name)


PROXY = _Proxy()


def expected_word():
    return "HI"


def test_helper_itself():
    assert expected_word() == "HI"
"""
USES_HELPER: Final = """\
from app.lib import shout
from tests.test_helpers import expected_word
from tests.conftest import PREFIX


def test_shout():
    assert shout("hi") == expected_word()


def test_prefix():
    assert PREFIX == "p"
"""
CONFTEST: Final = "from app.lib import shout\n\nPREFIX = 'p'\nSHOUT = shout\n"


def _project(root: Path) -> Path:
    return write_project(
        root,
        {
            "app/lib.py": LIB,
            "tests/conftest.py": CONFTEST,
            "tests/test_lib.py": TESTS,
            "tests/test_helpers.py": HELPERS_TEST,
            "tests/test_uses_helper.py": USES_HELPER,
        },
    )


CHANGES: Final = {
    # (file, old, new, the tests that fail, the tests that run)
    # make_scale runs at import: what it made may differ, so the whole suite runs.
    "closure made at import": (
        "app/lib.py", "return x * factor", "return x * factor + 1",
        {"test_triple"}, {"test_triple", "test_first", "test_second", "test_thread",
                          "test_shout", "test_prefix", "test_helper_itself"},
    ),
    "generator resumed by a later test": (
        "app/lib.py", "yield 2", "yield 3", {"test_second"}, {"test_first", "test_second"},
    ),
    "function run on another thread": (
        "app/lib.py", "21 * 2", "21 * 3", {"test_thread"}, {"test_thread"},
    ),
    "helper in another test file": (
        "tests/test_helpers.py", '"HI"', '"HO"',
        {"test_shout"}, {"test_shout", "test_prefix", "test_helper_itself"},
    ),
    "module a conftest imported": (
        "app/lib.py", "return word.upper()", "return word.upper() + '!'",
        {"test_shout"}, {"test_shout"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("change", list(CHANGES))
async def test_a_change_runs_the_tests_that_reach_it(tmp_path: Path, change: str) -> None:
    project = _project(tmp_path / "p")
    spruce = Spruce(project, tmp_path / "cache")
    failing, first = await spruce.run()
    assert failing == set() and first["selected"] == 7
    path, old, new, broken, ran = CHANGES[change]
    undo = _edit(project / path, old, new)
    failing, end = await spruce.run()
    expected = _pytest_failures(project)
    assert {nodeid.rpartition("::")[2] for nodeid in expected} == broken
    assert failing == expected
    assert (end["selected"], end["carried"]) == (len(ran), 7 - len(ran)), end["selection"]
    undo()
    failing, end = await spruce.run()
    assert failing == set() and end["passed"] == 7


async def test_an_unused_function_changes_no_test(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    spruce = Spruce(project, tmp_path / "cache")
    await spruce.run()
    _edit(project / "app/lib.py", "return 0", "return 1")
    failing, end = await spruce.run()
    assert failing == set() and (end["selected"], end["carried"]) == (0, 7)


async def test_the_projects_own_bytecode_stays_plain(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    await Spruce(project, tmp_path / "cache").run()
    plain = subprocess.run(
        [sys.executable, "-c", "import app.lib; print(app.lib.triple(2))"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plain.stdout.strip() == "6", plain.stderr
    assert not any(select_plugin.HIT.encode() in pyc.read_bytes() for pyc in project.rglob("*.pyc"))


def test_compiled_code_behaves_as_the_source() -> None:
    source = b'''\
"""Module."""


class Shape:
    def area(self):
        """Docstring kept."""
        return 4

    async def later(self):
        for value in [1, 2]:
            await _noop()
        return value


async def _noop():
    return None


def pairs(items):
    square = lambda x: x * x
    for item in items:
        received = yield square(item)
        if received:
            yield received
'''
    compiled = select_plugin.CompiledModule.compile(source, "m.py", "m.py")
    hits: list[int] = []
    namespace: dict[str, Any] = {"__name__": "m", select_plugin.HIT: hits.append}
    exec(compiled.code, namespace)  # the module under test
    assert namespace["Shape"].area.__doc__ == "Docstring kept."
    assert namespace["Shape"]().area() == 4
    generator = namespace["pairs"]([2, 3])
    assert [next(generator), generator.send("x"), next(generator)] == [4, "x", 9]
    assert asyncio.run(namespace["Shape"]().later()) == 2
    top, bodies = select_plugin.file_blocks(source)
    keys = {select_plugin.block_key("m.py", crc) for _, _, crc in bodies}
    assert compiled.top == top and set(compiled.keys) == keys
    assert set(hits) == keys  # every block reported itself, and nothing else did


async def test_bytecode_is_kept_in_spruces_cache_when_the_project_asks_for_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    project = _project(tmp_path / "p")
    cache = tmp_path / "cache"
    await Spruce(project, cache).run()
    assert not list(project.rglob("__pycache__"))
    kept = {pyc.name.split(".")[0] for pyc in (cache / "state").rglob("pycache/**/*.pyc")}
    assert {"test_lib", "test_helpers", "conftest"} <= kept


async def test_an_edit_of_the_same_size_in_the_same_second_runs_the_new_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest trusts a kept test file's bytecode while size and whole-second mtime match."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    project = _project(tmp_path / "p")
    test_file = project / "tests" / "test_helpers.py"
    second = (int(time.time()) + 100) * 1_000_000_000  # after the bytecode is written
    os.utime(test_file, ns=(second, second))
    spruce = Spruce(project, tmp_path / "cache")
    failing, _ = await spruce.run()
    assert failing == set()
    _edit(test_file, 'assert expected_word() == "HI"', 'assert expected_word() == "HO"')
    os.utime(test_file, ns=(second + 500_000_000, second + 500_000_000))
    failing, _ = await spruce.run()
    assert failing == _pytest_failures(project) == {"tests/test_helpers.py::test_helper_itself"}


EDITABLE_FINDER: Final = """\
import importlib.util, sys

class _Finder:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "lib2":
            return None
        init = {init!r}
        return importlib.util.spec_from_file_location(
            fullname, init, submodule_search_locations=[init.rsplit("/", 1)[0]]
        )

sys.meta_path.append(_Finder)
"""


async def test_a_src_layout_installed_editable_is_recorded(tmp_path: Path) -> None:
    """setuptools maps an editable src/ layout's top package with a finder of its own."""
    from tests.workflow.test_cache_key import _venv
    from tests.workflow.test_selection import _link_spruce_packages

    project = write_project(
        tmp_path / "p",
        {
            "src/lib2/__init__.py": "def one():\n    return 1\n\n\ndef two():\n    return 2\n",
            "tests/test_lib2.py": "from lib2 import one, two\n\n\n"
            "def test_one():\n    assert one() == 1\n\n\ndef test_two():\n    assert two() == 2\n",
        },
    )
    _venv(project, getattr(sys, "_base_executable", sys.executable))
    _link_spruce_packages(project / ".venv")
    site = next((project / ".venv").glob("lib/python3*/site-packages"))
    init = str(project / "src" / "lib2" / "__init__.py")
    (site / "__editable___lib2_finder.py").write_text(EDITABLE_FINDER.format(init=init))
    (site / "__editable__.lib2.pth").write_text("import __editable___lib2_finder\n")
    spruce = Spruce(project, tmp_path / "cache")
    failing, first = await spruce.run()
    assert failing == set() and first["selected"] == 2
    _edit(project / "src/lib2/__init__.py", "return 2", "return 3")
    failing, end = await spruce.run()
    python = str(project / ".venv" / "bin" / "python")
    assert failing == _pytest_failures(project, python) == {"tests/test_lib2.py::test_two"}
    assert (end["selected"], end["carried"]) == (1, 1), end["selection"]


CACHED: Final = """\
import functools


@functools.lru_cache(maxsize=None)
def square(x):
    return x * x


class Shapes:
    @functools.cache
    def side(self):
        return 2
"""
CACHED_TESTS: Final = """\
from app.cached import Shapes, square

SHAPES = Shapes()


def test_square_first():
    assert square(3) == 9


def test_square_again():  # answered by the cache in a full run
    assert square(3) == 9


def test_side_first():
    assert SHAPES.side() == 2


def test_side_again():
    assert SHAPES.side() == 2


def test_other():
    assert True
"""


@pytest.mark.parametrize(
    ("old", "new", "broken"),
    [
        ("return x * x", "return x * x + 1", {"test_square_first", "test_square_again"}),
        ("return 2", "return 3", {"test_side_first", "test_side_again"}),
    ],
)
async def test_a_call_a_functools_cache_answers_counts_as_running_the_function(
    tmp_path: Path, old: str, new: str, broken: set[str]
) -> None:
    project = write_project(
        tmp_path / "p", {"app/cached.py": CACHED, "tests/test_cached.py": CACHED_TESTS}
    )
    spruce = Spruce(project, tmp_path / "cache")
    failing, first = await spruce.run()
    assert failing == set() and first["selected"] == 5
    _edit(project / "app/cached.py", old, new)
    failing, end = await spruce.run()
    expected = _pytest_failures(project)
    assert {nodeid.rpartition("::")[2] for nodeid in expected} == broken
    assert failing == expected
    assert (end["selected"], end["carried"]) == (2, 3), end["selection"]
