"""Benchmark: `spruce run` against pre-commit running the same tools on a real project.

Fetches the sdist of a small well-known package (with its tests) into bench/.cache/, makes it a
git repository, configures pre-commit with local `language: system` hooks running the same
tools with the same arguments, then times both, side by side, cold (no result cache, no tool
caches) and on an unchanged re-run.  Prints medians and ratios (targets: cold <= 0.7x, re-run
<= 0.1x).  Usage: python bench/workflow.py [--repeat N] [--package NAME==VERSION]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
CACHE: Final = HERE / ".cache"
PY: Final = sys.executable
TOOL_CACHES: Final = (".mypy_cache", ".ruff_cache", ".pytest_cache")


def fetch(requirement: str) -> Path:
    """The unpacked sdist (downloaded once with pip)."""
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0]
    archives = sorted(downloads.glob(f"{name}-*.tar.gz"))
    if not archives:
        subprocess.run(
            [PY, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d",
             str(downloads), requirement],
            check=True, timeout=300,
        )  # fmt: skip
        archives = sorted(downloads.glob(f"{name}-*.tar.gz"))
    archive = archives[-1]
    unpacked = CACHE / "src" / archive.name.removesuffix(".tar.gz")
    if not unpacked.exists():
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked.parent, filter="data")
    return unpacked


def pre_commit_config() -> str:
    """Local hooks running the tools spruce runs, with the same arguments."""
    hooks = [
        ("ruff-format", "-m ruff format --check --force-exclude", "types: [python]"),
        ("ruff-check", "-m ruff check --no-fix --force-exclude", "types: [python]"),
        ("codespell", "-m codespell_lib", "types: [text]"),
        ("mypy", "-m mypy --no-error-summary", "types_or: [python, pyi]\n    require_serial: true"),
        ("bandit", "-m bandit -q", "types: [python]\n    exclude: ^(tests?/|.*conftest\\.py)"),
        ("vulture", "-m vulture --min-confidence 80", "types: [python]\n    require_serial: true"),
        ("pytest", "-m pytest -q", "pass_filenames: false\n    always_run: true"),
    ]
    if importlib.util.find_spec("pre_commit_hooks") is not None:
        hooks[:0] = [
            (
                "trailing-whitespace",
                "-m pre_commit_hooks.trailing_whitespace_fixer",
                "types: [text]",
            ),
            ("end-of-file", "-m pre_commit_hooks.end_of_file_fixer", "types: [text]"),
            ("check-toml", "-m pre_commit_hooks.check_toml", "types: [toml]"),
            ("check-yaml", "-m pre_commit_hooks.check_yaml", "types: [yaml]"),
            ("check-ast", "-m pre_commit_hooks.check_ast", "types: [python]"),
            ("merge-conflict", "-m pre_commit_hooks.check_merge_conflict", "types: [text]"),
            ("large-files", "-m pre_commit_hooks.check_added_large_files --enforce-all", ""),
        ]
    lines = ["repos:", "- repo: local", "  hooks:"]
    for hook_id, entry, extra in hooks:
        lines += [f"  - id: {hook_id}", f"    name: {hook_id}", f"    entry: {PY} {entry}"]
        lines += ["    language: system"] + ([f"    {extra}"] if extra else [])
    return "\n".join(lines) + "\n"


def prepare(source: Path) -> Path:
    """A fresh git repository holding the project and the pre-commit config."""
    work = CACHE / "work" / source.name
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    (work / ".pre-commit-config.yaml").write_text(pre_commit_config())
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run([*git, *args], cwd=work, check=True, timeout=60)
    return work


def clear_tool_caches(project: Path) -> None:
    for name in TOOL_CACHES:
        shutil.rmtree(project / name, ignore_errors=True)
    for pycache in project.rglob("__pycache__"):
        shutil.rmtree(pycache, ignore_errors=True)


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=900, check=False)  # fmt: skip
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--package", default="idna==3.20")
    args = parser.parse_args()
    project = prepare(fetch(args.package))
    import os

    env = dict(os.environ)
    spruce_cache = CACHE / "spruce-results"
    env["SPRUCE_CACHE_DIR"] = str(spruce_cache)
    store = f"sqlite://{CACHE / 'events.db'}"
    spruce = [PY, "-m", "spruce", "run", str(project), "--store", store, "--format", "json"]
    pre_commit = [PY, "-m", "pre_commit", "run", "--all-files"]
    timed(pre_commit, project)  # pre-commit builds its hook store once, outside the timings
    labels = ("spruce cold", "pre-commit cold", "spruce re-run", "pre-commit re-run")
    times: dict[str, list[float]] = {label: [] for label in labels}
    for _ in range(args.repeat):
        clear_tool_caches(project)
        shutil.rmtree(spruce_cache, ignore_errors=True)
        times["spruce cold"].append(timed(spruce, project, env))
        times["spruce re-run"].append(timed(spruce, project, env))
        clear_tool_caches(project)
        times["pre-commit cold"].append(timed(pre_commit, project))
        times["pre-commit re-run"].append(timed(pre_commit, project))
    medians = {name: statistics.median(values) for name, values in times.items()}
    files = sum(1 for _ in project.rglob("*.py"))
    hooks = "yes" if "trailing" in pre_commit_config() else "absent"
    print(
        f"project: {project.name} ({files} .py files), repeat {args.repeat}, "
        f"pre-commit-hooks {hooks}"
    )
    for name, value in medians.items():
        print(f"  {name:<18} median {value:7.3f}s  ({', '.join(f'{v:.2f}' for v in times[name])})")
    cold = medians["spruce cold"] / medians["pre-commit cold"]
    warm = medians["spruce re-run"] / medians["pre-commit re-run"]
    # Each round times both tools back to back: its own ratio shows how steady the load was.
    pairs = [s / p for s, p in zip(times["spruce cold"], times["pre-commit cold"], strict=True)]
    print(f"cold:   spruce / pre-commit = {cold:.2f}x  (target <= 0.70x)")
    print(f"        per round: {', '.join(f'{ratio:.2f}x' for ratio in pairs)}")
    print(f"re-run: spruce / pre-commit = {warm:.3f}x  (target <= 0.10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
