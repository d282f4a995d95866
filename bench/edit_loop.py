"""Benchmark: the edit loop. On a real sdist with its test suite (idna: ~6,400 tests), edit the
body of one function (behaviour unchanged) and re-run; spruce against pre-commit --all-files and
pre-commit --files THAT_FILE, side by side in each round, plus cold and unchanged runs.

Also measures what recording test dependencies costs: the suite under plain pytest against the
suite with spruce's selection plugin recording (wall and CPU time; the machine may be shared).
Prints medians, ratios, and spruce's time per phase and hook on the edited re-run.
Target: spruce edit <= 0.25x pre-commit --all-files (goal 0.1x).
Usage: python bench/edit_loop.py [--repeat N] [--package NAME==VERSION] [--function NAME]
       [--write-bytecode]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workflow import clear_tool_caches, fetch, pre_commit_config

PY: Final = sys.executable
FILE: Final = "idna/core.py"
# idna's property tests need hypothesis, which this environment does not have.
SKIP_WITHOUT_HYPOTHESIS: Final = ("--ignore=tests/test_idna_properties.py",)


def pytest_args() -> tuple[str, ...]:
    return () if importlib.util.find_spec("hypothesis") else SKIP_WITHOUT_HYPOTHESIS


def prepare(source: Path, into: Path) -> Path:
    """A git repository (outside this one, so pytest's rootdir is the project) with the
    pre-commit config and spruce's pytest arguments matching pre-commit's."""
    work = into / source.name
    shutil.copytree(source, work)
    args = pytest_args()
    config = pre_commit_config().replace("-m pytest -q", " ".join(["-m pytest -q", *args]))
    (work / ".pre-commit-config.yaml").write_text(config)
    with (work / "pyproject.toml").open("a") as handle:
        handle.write(f"\n[tool.spruce.hooks.pytest]\nargs = {json.dumps(list(args))}\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run([*git, *command], cwd=work, check=True, timeout=60)
    return work


def edit_function(path: Path, function: str, mark: int) -> Callable[[], object]:
    """Add a statement that changes nothing to the body of `function` (after its docstring);
    the returned function restores the file."""
    text = path.read_text()
    tree = ast.parse(text)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    first = node.body[0]
    has_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    anchor = node.body[1] if has_docstring and len(node.body) > 1 else first
    lines = text.splitlines(keepends=True)
    indent = " " * anchor.col_offset
    lines.insert(anchor.lineno - 1, f"{indent}_ = {mark}  # edited\n")
    path.write_text("".join(lines))
    return lambda: path.write_text(text)


class Clock:
    """Wall and CPU (children's user+system) time of one command."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def run(self, label: str, argv: list[str], cwd: Path, env: dict[str, str]) -> str:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        self.wall.setdefault(label, []).append(wall)
        self.cpu.setdefault(label, []).append(cpu)
        return done.stdout

    def median(self, label: str) -> float:
        return statistics.median(self.wall[label])


def phase_times(document: dict[str, Any]) -> str:
    """`phase 1.2s (hook 0.3s, …)` lines of a spruce result document."""
    lines = []
    for phase in document.get("phases", []):
        hooks = ", ".join(
            f"{hook['id']} {hook['duration']:.2f}s"
            + (" cached" if hook.get("cached") else "")
            + (
                f" [{hook['files_checked']} checked/{hook['files_cached']} cached]"
                if "files_checked" in hook
                else ""
            )
            for hook in phase["hooks"]
        )
        lines.append(f"    {phase['name']:<20} {phase['duration']:6.2f}s  {hooks}")
    tests = document.get("tests", {})
    lines.append(f"    tests: {tests.get('selection', '')}")
    return "\n".join(lines)


def recording_overhead(project: Path, clock: Clock, env: dict[str, str], scratch: Path) -> None:
    """The suite under plain pytest, then under the selection plugin recording every test."""
    from spruce.hooks import select_plugin

    shutil.copyfile(select_plugin.__file__, scratch / "spruce_select_plugin.py")
    settings = scratch / "settings.json"
    out = scratch / "report.json"
    settings.write_text(json.dumps({"root": str(project), "record": True, "carry": [],
                                    "out": str(out)}))  # fmt: skip
    recording = {**env, "PYTHONPATH": str(scratch), select_plugin.ENV_SETTINGS: str(settings)}
    base = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args()]
    clock.run("pytest plain", base, project, env)
    clock.run("pytest recording", [*base, "-p", "spruce_select_plugin"], project, recording)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--package", default="idna==3.20")
    parser.add_argument("--function", default="valid_contexto", help=f"a function of {FILE}")
    parser.add_argument(
        "--write-bytecode",
        action="store_true",
        help="let every tool cache bytecode (drop PYTHONDONTWRITEBYTECODE, as on most developer"
        " machines); cold runs still start without __pycache__",
    )
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="spruce-edit-loop-"))
    try:
        return run(args, workspace)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def run(args: argparse.Namespace, workspace: Path) -> int:
    project = prepare(fetch(args.package), workspace)
    env = dict(os.environ)
    if args.write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    spruce_cache = workspace / "spruce-cache"
    env["SPRUCE_CACHE_DIR"] = str(spruce_cache)
    store = f"sqlite://{workspace / 'events.db'}"
    spruce = [PY, "-m", "spruce", "run", str(project), "--store", store, "--format", "json"]
    all_files = [PY, "-m", "pre_commit", "run", "--all-files"]
    one_file = [PY, "-m", "pre_commit", "run", "--files", FILE]
    clock = Clock()
    clock.run("setup", all_files, project, env)  # pre-commit builds its hook store once
    edited_document: dict[str, Any] = {}
    mark = 0
    for _ in range(args.repeat):
        clear_tool_caches(project)
        shutil.rmtree(spruce_cache, ignore_errors=True)
        clock.run("spruce cold", spruce, project, env)
        clock.run("spruce unchanged", spruce, project, env)
        clear_tool_caches(project)
        clock.run("pre-commit cold", all_files, project, env)
        clock.run("pre-commit unchanged", all_files, project, env)
        # The edit loop: each tool sees a new edit of the same function on a warm cache.
        for label, argv in (
            ("spruce edit", spruce),
            ("pre-commit --all-files edit", all_files),
            ("pre-commit --files edit", one_file),
        ):
            mark += 1
            undo = edit_function(project / FILE, args.function, mark)
            try:
                output = clock.run(label, argv, project, env)
            finally:
                undo()
            if label == "spruce edit":
                edited_document = json.loads(output or "{}")
    recording_scratch = workspace / "recording"
    recording_scratch.mkdir()
    for _ in range(args.repeat):
        recording_overhead(project, clock, env, recording_scratch)
    report(args, project, clock, edited_document)
    return 0


def ratio(clock: Clock, numerator: str, denominator: str) -> float:
    return clock.median(numerator) / clock.median(denominator)


def report(args: argparse.Namespace, project: Path, clock: Clock, edited: dict[str, Any]) -> None:
    files = sum(1 for _ in project.rglob("*.py"))
    print(f"project: {project.name} ({files} .py files), edit: {FILE}:{args.function}")
    print(f"repeat {args.repeat}; medians of wall and CPU (children's user+system) seconds")
    writes = args.write_bytecode or not os.environ.get("PYTHONDONTWRITEBYTECODE")
    print(f"bytecode caching: {'on' if writes else 'off (PYTHONDONTWRITEBYTECODE is set)'}")
    for label, wall in clock.wall.items():
        if label == "setup":
            continue
        cpu = statistics.median(clock.cpu[label])
        rounds = ", ".join(f"{value:.2f}" for value in wall)
        print(f"  {label:<28} {statistics.median(wall):7.2f}s wall {cpu:7.2f}s cpu  ({rounds})")
    all_files = ratio(clock, "spruce edit", "pre-commit --all-files edit")
    one_file = ratio(clock, "spruce edit", "pre-commit --files edit")
    print(f"edit:      spruce / pre-commit --all-files = {all_files:.3f}x  (target <= 0.25x)")
    print(f"           spruce / pre-commit --files     = {one_file:.3f}x")
    pairs = zip(clock.wall["spruce edit"], clock.wall["pre-commit --all-files edit"], strict=True)
    print(f"           per round: {', '.join(f'{s / p:.3f}x' for s, p in pairs)}")
    print(f"cold:      spruce / pre-commit = {ratio(clock, 'spruce cold', 'pre-commit cold'):.2f}x")
    unchanged = ratio(clock, "spruce unchanged", "pre-commit unchanged")
    print(f"unchanged: spruce / pre-commit = {unchanged:.3f}x")
    plain, recording = "pytest plain", "pytest recording"
    cpu = statistics.median(clock.cpu[recording]) / statistics.median(clock.cpu[plain])
    wall_ratio = ratio(clock, recording, plain)
    print(f"recording: pytest recording / plain = {wall_ratio:.2f}x wall, {cpu:.2f}x cpu")
    print("spruce's edited re-run, per phase and hook (last round):")
    print(phase_times(edited))


if __name__ == "__main__":
    sys.exit(main())
