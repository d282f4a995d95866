"""The differential harness: spruce's findings on a real sdist against the tools run directly.

An sdist is downloaded from PyPI once (`pip download --no-binary :all: --no-deps`) into a cache
directory, with an environment of its own holding the project, its test needs and the same tool
versions spruce's environment has. Each run unpacks a fresh copy, plants a test module with
failing parametrized cases and xfails, links the environment in as the project's `.venv`, and
then runs, in that copy:

- every tool directly, as a user would, with the file set spruce documents for it (ruff finds its
  own files; mypy, bandit, vulture and codespell get the files spruce gives them), parsed here
  by code of its own;
- `spruce run --format json` (no cache, a fresh in-memory log).

Each tool's findings must be the same multiset of (path, line, column, code), and spruce's
`findings_total` the same count; pytest's failed nodeids and failing lines must be those of
its own `-rf --tb=line` report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

Key = tuple[str, int, int, str]

# Tools at the versions spruce's own environment has, so both sides run the same code.
TOOLS: Final = ("ruff", "mypy", "bandit", "vulture", "codespell", "pytest")
HARNESS_NEEDS: Final = ("pytest-reportlog",)  # pytest's own per-test JSON, for crash lines
CACHE_ENV: Final = "SPRUCE_DIFFERENTIAL_CACHE"
_SKIP_DIRS: Final = frozenset(
    {".git", ".venv", "venv", ".tox", ".nox", "__pycache__", ".mypy_cache", ".ruff_cache"}
    | {".pytest_cache", ".hypothesis", "build", "dist", "node_modules", ".eggs", "htmlcov"}
)
_BANDIT_SKIPS: Final = ("tests/", "test/")
_BANDIT_SKIP_NAMES: Final = re.compile(r"(^|/)(test_[^/]*\.py|[^/]*_test\.py|conftest\.py)$")
_CODESPELL_SKIPS: Final = (".lock", ".svg", ".min.js", ".png", ".jpg", ".gif", ".ico")
_TIMEOUT: Final = 600
_SPRUCE_RUN: Final = (sys.executable, "-m", "spruce", "run", "--store", "memory://", "--no-cache")

PLANTED: Final = """\
import pytest


def double(n):
    return n * 2


@pytest.mark.parametrize("n", [1, 2, 3])
def test_planted_double(n):
    result = double(n)
    assert result == 4


def check(value):
    assert value, "refused"


def test_planted_helper():
    check(0)


@pytest.mark.xfail(reason="planted")
def test_planted_xfail():
    assert False


@pytest.mark.xfail(reason="planted, passes", strict=False)
def test_planted_xpass():
    pass
"""


@dataclass(frozen=True)
class Sdist:
    """One project on PyPI, its test needs, and pytest arguments that keep its suite short."""

    name: str
    version: str
    test_needs: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()


@dataclass
class ToolComparison:
    """One tool's findings as spruce reported them and as the tool reported them directly."""

    hook: str
    spruce: Counter[Key]
    direct: Counter[Key]
    spruce_total: int

    @property
    def equal(self) -> bool:
        return self.spruce == self.direct and self.spruce_total == sum(self.direct.values())

    def describe(self) -> str:
        missing = self.direct - self.spruce
        extra = self.spruce - self.direct
        text = (
            f"{self.hook}: direct {sum(self.direct.values())}, spruce {self.spruce_total} "
            f"(listed {sum(self.spruce.values())})"
        )
        if missing or extra:
            text += f"; only direct: {sorted(missing)[:5]}; only spruce: {sorted(extra)[:5]}"
        return text


@dataclass
class Comparison:
    """Every tool's comparison on one sdist, and pytest's failed tests on both sides."""

    sdist: Sdist
    tools: list[ToolComparison] = field(default_factory=list)
    spruce_failed: list[tuple[str, str | None, int | None]] = field(default_factory=list)
    pytest_failed: list[tuple[str, str | None, int | None]] = field(default_factory=list)
    spruce_tests: dict[str, Any] = field(default_factory=dict)
    pytest_summary: str = ""


def cache_dir() -> Path:
    """Where sdists and their environments are kept between runs."""
    default = Path.home() / ".cache" / "spruce-differential"
    path = Path(os.environ.get(CACHE_ENV) or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        start_new_session=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1", **env},
    )


def _tool_pins() -> list[str]:
    """`name==version` of each tool in spruce's own environment."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in TOOLS:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return pins


def fetch(sdist: Sdist) -> tuple[Path, Path]:
    """The sdist's archive and its environment, made once and kept in the cache directory."""
    cache = cache_dir()
    archive = cache / f"{sdist.name}-{sdist.version}.tar.gz"
    if not archive.exists():
        spec = f"{sdist.name}=={sdist.version}"
        pip = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        done = _run([*pip, spec, "-d", str(cache), "-q"], cache)
        if done.returncode != 0 or not archive.exists():
            raise RuntimeError(f"pip download {spec} failed: {done.stderr[-2000:]}")
    env = cache / "envs" / f"{sdist.name}-{sdist.version}"
    python = env / "bin" / "python"
    needs = [f"{sdist.name}=={sdist.version}", *sdist.test_needs, *_tool_pins(), *HARNESS_NEEDS]
    ready = env / "ready"
    if not python.exists():
        made = _run([sys.executable, "-m", "venv", str(env)], cache)
        if made.returncode != 0:
            raise RuntimeError(f"venv failed: {made.stderr[-2000:]}")
    if not ready.exists() or ready.read_text() != "\n".join(needs):
        installed = _run([str(python), "-m", "pip", "install", "-q", *needs], cache)
        if installed.returncode != 0:
            raise RuntimeError(f"pip install failed: {installed.stderr[-2000:]}")
        ready.write_text("\n".join(needs))
    return archive, env


def unpack(sdist: Sdist, into: Path) -> Path:
    """A fresh copy of the sdist's tree, a planted test module in it and its environment linked
    in as `.venv` (spruce runs the tools from the project's `.venv`)."""
    archive, env = fetch(sdist)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    root = into / f"{sdist.name}-{sdist.version}"
    tests = root / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "test_spruce_planted.py").write_text(PLANTED)
    (root / ".venv").symlink_to(env)
    if sdist.pytest_args:
        with (root / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
            args = ", ".join(json.dumps(arg) for arg in sdist.pytest_args)
            pyproject.write(f"\n[tool.spruce.hooks.pytest]\nargs = [{args}]\n")
    return root


# the files spruce gives each tool (SPEC §5, docs/running.md) --------------------------------


def project_files(root: Path) -> list[str]:
    """Every file of an unpacked sdist (not a git work tree), as spruce walks it."""
    found: list[str] = []
    for current, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        rel = Path(current).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        found.extend(prefix + n for n in names if not os.path.islink(Path(current, n)))
    return sorted(found)


def mypy_files(files: list[str]) -> list[str]:
    stubs = {path[:-1] for path in files if path.endswith(".pyi")}
    return [p for p in files if p.endswith((".py", ".pyi")) and p not in stubs]


def bandit_files(files: list[str]) -> list[str]:
    return [
        p
        for p in files
        if p.endswith(".py")
        and not p.startswith(_BANDIT_SKIPS)
        and not any(f"/{skip}" in p for skip in _BANDIT_SKIPS)
        and not _BANDIT_SKIP_NAMES.search(p)
    ]


def codespell_files(files: list[str]) -> list[str]:
    return [p for p in files if not p.endswith(_CODESPELL_SKIPS)]


# the tools run directly, and their outputs read by this harness ------------------------------


def _rel(root: Path, path: str) -> str:
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate.resolve().relative_to(root.resolve()).as_posix()
    return candidate.as_posix().removeprefix("./")


def _ruff(root: Path, python: Path, *args: str) -> Counter[Key]:
    done = _run([str(python), "-m", "ruff", *args, "--output-format", "json", "."], root)
    return Counter(
        (
            _rel(root, item["filename"]),
            item["location"]["row"],
            item["location"]["column"],
            item["code"] or item.get("name") or "ruff",
        )
        for item in json.loads(done.stdout or "[]")
    )


def ruff_check(root: Path, python: Path, files: list[str]) -> Counter[Key]:
    return _ruff(root, python, "check", "--no-fix")


def ruff_format(root: Path, python: Path, files: list[str]) -> Counter[Key]:
    return _ruff(root, python, "format", "--check")


def mypy(root: Path, python: Path, files: list[str]) -> Counter[Key]:
    argv = [str(python), "-m", "mypy", "-O", "json", "--no-error-summary", "--no-color-output"]
    done = _run([*argv, *mypy_files(files)], root)
    found: Counter[Key] = Counter()
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            place = (_rel(root, item["file"]), max(item["line"], 1), max(item["column"] + 1, 1))
            found[(*place, item["code"] or "mypy")] += 1
    return found


def bandit(root: Path, python: Path, files: list[str]) -> Counter[Key]:
    done = _run([str(python), "-m", "bandit", "-f", "json", "-q", *bandit_files(files)], root)
    report = json.loads(done.stdout or "{}")
    return Counter(
        (_rel(root, r["filename"]), r["line_number"], r["col_offset"] + 1, r["test_id"])
        for r in report.get("results", [])
    )


_VULTURE: Final = re.compile(
    r"^(.+?):(\d+): (unused \w+|unreachable code|unsatisfiable \w+|redundant \w+)?"
)


def vulture(root: Path, python: Path, files: list[str]) -> Counter[Key]:
    py = [p for p in files if p.endswith(".py")]
    done = _run([str(python), "-m", "vulture", "--min-confidence", "80", *py], root)
    found: Counter[Key] = Counter()
    for line in done.stdout.splitlines():
        match = _VULTURE.match(line)
        if match:
            code = match[3].replace(" ", "-") if match[3] else "dead-code"
            found[(_rel(root, match[1]), int(match[2]), 1, code)] += 1
    return found


_CODESPELL: Final = re.compile(r"^(.+?):(\d+): .+ ==> .+$")


def codespell(root: Path, python: Path, files: list[str]) -> Counter[Key]:
    done = _run([str(python), "-m", "codespell_lib", *codespell_files(files)], root)
    found: Counter[Key] = Counter()
    for line in done.stdout.splitlines():
        match = _CODESPELL.match(line)
        if match:
            found[(_rel(root, match[1]), int(match[2]), 1, "misspelling")] += 1
    return found


DIRECT: Final[dict[str, Callable[[Path, Path, list[str]], Counter[Key]]]] = {
    "ruff-check": ruff_check,
    "ruff-format": ruff_format,
    "mypy": mypy,
    "bandit": bandit,
    "vulture": vulture,
    "codespell": codespell,
}

_FAILED: Final = re.compile(r"^FAILED (\S+)")
Failure = tuple[str, str | None, int | None]


def pytest_failures(root: Path, python: Path, args: tuple[str, ...]) -> tuple[list[Failure], str]:
    """pytest's failed tests from its own `-rf` report, each with the crash location pytest
    recorded for it (its `--report-log`; None where the crash lies outside the project or the
    failure has none, as a strict xpass), and pytest's closing line."""
    log = root / ".pytest-report.jsonl"
    done = _run([str(python), "-m", "pytest", "-q", "-rf", f"--report-log={log}", *args], root)
    lines = done.stdout.splitlines()
    nodeids = [m[1] for line in lines if (m := _FAILED.match(line))]
    crashes: dict[str, tuple[str, int] | None] = {}
    for line in log.read_text().splitlines():
        report = json.loads(line)
        if report.get("$report_type") != "TestReport" or report.get("outcome") != "failed":
            continue
        longrepr = report.get("longrepr")
        crash = longrepr.get("reprcrash") if isinstance(longrepr, dict) else None
        crashes.setdefault(report["nodeid"], (crash["path"], crash["lineno"]) if crash else None)
    failed: list[Failure] = []
    for nodeid in nodeids:
        crash = crashes[nodeid]
        relative = _inside(root, crash[0]) if crash else None
        failed.append((nodeid, relative, crash[1]) if crash and relative else (nodeid, None, None))
    return failed, lines[-1] if lines else ""


_COUNT: Final = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)\b")


def pytest_counts(closing_line: str) -> dict[str, int]:
    """The outcome counts of pytest's closing line (`4 failed, 1361 passed, 9 skipped …`)."""
    counts = dict.fromkeys(("passed", "failed", "skipped", "errors", "xfailed", "xpassed"), 0)
    for number, word in _COUNT.findall(closing_line):
        counts["errors" if word.startswith("error") else word] = int(number)
    return counts


def _inside(root: Path, path: str) -> str | None:
    """`path` relative to the project, None when it lies outside it or in its environment."""
    try:
        relative = Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    return None if relative.startswith(".") else relative


def compare(sdist: Sdist, into: Path) -> Comparison:
    """Run spruce and the tools on one fresh copy of `sdist`; what each side found."""
    root = unpack(sdist, into)
    python = root / ".venv" / "bin" / "python"
    files = project_files(root)
    done = _run(
        [*_SPRUCE_RUN, str(root), "--format", "json"],
        root,
    )
    document = json.loads(done.stdout)
    hooks = {h["id"]: h for phase in document["phases"] for h in phase["hooks"]}
    result = Comparison(sdist)
    for hook_id, direct in DIRECT.items():
        hook = hooks[hook_id]
        spruce = Counter((f["path"], f["line"], f["column"], f["code"]) for f in hook["findings"])
        result.tools.append(
            ToolComparison(hook_id, spruce, direct(root, python, files), hook["findings_total"])
        )
    tests = document["tests"]
    result.spruce_tests = {k: v for k, v in tests.items() if k not in ("cases", "all_cases")}
    spruce_failed = [c for c in tests["cases"] if c["outcome"] == "failed"]
    result.pytest_failed, result.pytest_summary = pytest_failures(root, python, sdist.pytest_args)
    outside = {nodeid for nodeid, path, _ in result.pytest_failed if path is None}
    result.spruce_failed = [
        (c["nodeid"], None, None) if c["nodeid"] in outside else (c["nodeid"], c["path"], c["line"])
        for c in spruce_failed
    ]
    return result
