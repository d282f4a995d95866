"""The project's files: which ones (git ls-files, or a filtered walk) and their contents.

`FileSet` reads each file at most once per run; the same bytes feed the in-process checks and
the content hashes that key the result cache and detect a fixer's changes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

# Directories no quality tool should look into when the project is not a git repository.
SKIP_DIRS: Final = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", ".env", "env", ".tox", ".nox", "__pycache__",
        ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "build", "dist",
        "node_modules", ".eggs", "site-packages", "htmlcov", ".idea", ".vscode",
    }
)  # fmt: skip
_GIT_TIMEOUT: Final = 30.0
_MAX_TEXT_BYTES: Final = 4 * 1024 * 1024  # larger files are hashed but never held in memory
_MAX_HELD_BYTES: Final = 256 * 1024 * 1024  # past this, bytes are read again when needed
_log: Final = logging.getLogger("spruce.workflow")


def discover_files(project: Path, *, exclude: Sequence[str] = ()) -> list[str]:
    """Relative posix paths of the project's files, sorted; `exclude` globs are dropped."""
    files = _git_files(project)
    if files is None:
        files = _walk(project)
    if exclude:
        files = [path for path in files if not matches_any(path, exclude)]
    return sorted(_utf8_only(files))


def _utf8_only(paths: list[str]) -> list[str]:
    """Drop names that are not UTF-8: events, findings and the cache are JSON, which cannot
    carry them (os.fsdecode turned their bytes into lone surrogates)."""
    kept = []
    for path in paths:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            _log.warning("skipping %s: its name is not UTF-8", ascii(path))
            continue
        kept.append(path)
    return kept


def matches_any(path: str, patterns: Iterable[str]) -> bool:
    """Whether a relative path matches a glob, or lies under a directory, of `patterns`."""
    for pattern in patterns:
        stripped = pattern.rstrip("/")
        if fnmatch.fnmatch(path, stripped) or path.startswith(stripped + "/"):
            return True
        if "/" not in stripped and fnmatch.fnmatch(path.rsplit("/", 1)[-1], stripped):
            return True
    return False


def _git_files(project: Path) -> list[str] | None:
    """Tracked and untracked-but-not-ignored files, or None outside a git work tree.

    Untracked files in tool and cache directories (`__pycache__`, `.mypy_cache`…) are left out
    as a walk leaves them out: a project without a .gitignore would otherwise see the bytecode
    its own test run wrote as new files to check (and as changed inputs on every run).
    """
    if not _inside_git(project):
        return None
    try:
        listed = subprocess.run(
            # -t tags each name: "H " tracked, "? " untracked.
            ["git", "ls-files", "-z", "-t", "--cached", "--others", "--exclude-standard"],
            cwd=project,
            capture_output=True,
            timeout=_GIT_TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names: dict[str, None] = {}
    for raw in listed.stdout.split(b"\0"):
        if len(raw) < 3:
            continue
        name = os.fsdecode(raw[2:])
        if raw[:1] == b"?" and in_skipped_dir(name):
            continue
        names[name] = None
    # Deleted but not yet committed files are still listed; submodules are directories.
    return [name for name in names if (project / name).is_file()]


def in_skipped_dir(path: str, *, is_dir: bool = False) -> bool:
    """Whether a project-relative path lies in a tool's, an environment's or a build's directory
    (`.ruff_cache`, `__pycache__`, `.venv`…), or is one when `is_dir`."""
    parts = path.split("/")
    return any(_skipped_dir(part) for part in (parts if is_dir else parts[:-1]))


def _skipped_dir(name: str) -> bool:
    return name in SKIP_DIRS or name.endswith(".egg-info")


def _inside_git(project: Path) -> bool:
    return any((parent / ".git").exists() for parent in (project, *project.parents))


def _walk(project: Path) -> list[str]:
    found: list[str] = []
    for current, dirs, names in os.walk(project):
        dirs[:] = [d for d in dirs if not _skipped_dir(d)]
        rel = Path(current).relative_to(project).as_posix()
        prefix = "" if rel == "." else rel + "/"
        found.extend(prefix + name for name in names if not os.path.islink(Path(current, name)))
    return found


class FileSet:
    """The project's files with their digests and (for text-sized files) their bytes."""

    def __init__(self, root: Path, paths: Sequence[str]) -> None:
        self.root = root
        self.paths = tuple(paths)
        self._data: dict[str, bytes | None] = {}
        self._digests: dict[str, str] = {}
        self._held = 0

    def preload(self) -> None:
        """Read and hash every file once (call in a worker thread)."""
        for path in self.paths:
            if path not in self._digests:
                self._load(path)

    def read(self, path: str) -> bytes | None:
        """The file's bytes (None when unreadable or too large to hold)."""
        if path in self._data:
            return self._data[path]
        return self._load(path)

    def digest(self, path: str) -> str:
        """A content hash of the file ("" when unreadable)."""
        if path not in self._digests:
            self._load(path)
        return self._digests[path]

    def size(self, path: str) -> int:
        """The file's size in bytes."""
        try:
            return (self.root / path).stat().st_size
        except OSError:
            return 0

    def refresh(self, paths: Iterable[str]) -> list[str]:
        """Re-read files a fixer may have written; returns those whose content changed."""
        changed = []
        for path in paths:
            before = self.digest(path)
            self._held -= len(self._data.pop(path, None) or b"")
            self._digests.pop(path, None)
            if self.digest(path) != before:
                changed.append(path)
        return changed

    def select(
        self,
        *,
        suffixes: Sequence[str] = (),
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> list[str]:
        """The paths with one of `suffixes` (any if empty), under `include`, not in `exclude`."""
        chosen = []
        for path in self.paths:
            if suffixes and not path.endswith(tuple(suffixes)):
                continue
            if include and not matches_any(path, include):
                continue
            if exclude and matches_any(path, exclude):
                continue
            chosen.append(path)
        return chosen

    def _load(self, path: str) -> bytes | None:
        data: bytes | None
        try:
            with (self.root / path).open("rb") as handle:
                data = handle.read(_MAX_TEXT_BYTES + 1)
                hasher = hashlib.blake2b(data, digest_size=16)
                if len(data) > _MAX_TEXT_BYTES:
                    while chunk := handle.read(1 << 20):
                        hasher.update(chunk)
                    data = None
        except OSError:
            self._data[path] = None
            self._digests[path] = ""
            return None
        self._digests[path] = hasher.hexdigest()
        if data is None or self._held + len(data) <= _MAX_HELD_BYTES:
            self._data[path] = data
            self._held += len(data or b"")
        return data
