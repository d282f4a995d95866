"""Which files the hooks see: git's view in a repository, a filtered walk elsewhere."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from spruce.workflow.files import FileSet, discover_files


def make_tree(root: Path) -> None:
    for name in ("pkg/a.py", "README.md", ".venv/lib/x.py", "build/out.py", "pkg/__pycache__/a.pyc",
                 "ignored.log", "node_modules/m.js"):  # fmt: skip
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
    (root / ".gitignore").write_text("*.log\n")


def test_a_walk_skips_virtualenvs_caches_and_build_output(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert discover_files(tmp_path) == [".gitignore", "README.md", "ignored.log", "pkg/a.py"]


def test_in_a_git_repository_ignored_files_are_left_out(tmp_path: Path) -> None:
    make_tree(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "README.md"], cwd=tmp_path, check=True)
    files = discover_files(tmp_path)
    assert "ignored.log" not in files
    assert {"README.md", "pkg/a.py"} <= set(files)  # tracked, and untracked but not ignored


def test_untracked_caches_are_left_out_in_git_but_tracked_files_anywhere_are_kept(
    tmp_path: Path,
) -> None:
    make_tree(tmp_path)
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "settings.py").write_text("X = 1\n")  # a package named env, tracked
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "README.md", "env/settings.py"], cwd=tmp_path, check=True)
    # No .gitignore entry for them: bytecode, virtualenvs and build output are still no input.
    assert discover_files(tmp_path) == [".gitignore", "README.md", "env/settings.py", "pkg/a.py"]


def test_excluded_globs_are_dropped(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert discover_files(tmp_path, exclude=["pkg/", "*.md"]) == [".gitignore", "ignored.log"]


def test_refresh_reports_only_files_whose_content_changed(tmp_path: Path) -> None:
    make_tree(tmp_path)
    files = FileSet(tmp_path, ["README.md", "pkg/a.py"])
    files.preload()
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    (tmp_path / "README.md").touch()
    assert files.refresh(["README.md", "pkg/a.py"]) == ["pkg/a.py"]
    assert files.read("pkg/a.py") == b"x = 2\n"


def test_names_that_are_not_utf8_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / os.fsdecode(b"caf\xe9.py")).write_text("x = 1\n")
    assert discover_files(tmp_path) == ["ok.py"]
