"""`--staged`: check what a commit would carry by setting unstaged changes aside for the run.

Before the run, every tracked file whose work-tree content differs from the index is copied,
byte for byte (with its mode, or as a deletion or a symlink), into a backup directory in
spruce's state directory, and the index version is checked out. After the run — also on
Ctrl-C, SIGTERM or a crash — the copies are put back. A `kill -9` leaves the backup behind:
the next `spruce run` in that repository puts back every file still as spruce left it and keeps
the copies of any the user changed since (naming them), so nothing is ever lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

from spruce.errors import UsageError
from spruce.workflow.scope import GIT_TIMEOUT, git_lines

MANIFEST: Final = "manifest.json"
_GIT_CONFIG: Final = ("-c", "core.autocrlf=false", "-c", "core.safecrlf=false")


def backups_root() -> Path:
    """Where `--staged` keeps the unstaged changes it set aside (spruce's state directory)."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("spruce")) / "staged"


def repo_root(project: Path) -> Path:
    """The top of the git work tree holding `project` (UsageError outside one)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except OSError as exc:
        raise UsageError(f"git is needed for this option: {exc}") from None
    if done.returncode != 0:
        raise UsageError(f"{project} is not inside a git work tree")
    return Path(done.stdout.strip()).resolve()


def _repo_dir(root: Path) -> Path:
    digest = hashlib.blake2b(str(root).encode(), digest_size=8).hexdigest()
    return backups_root() / digest


@contextlib.contextmanager
def _repo_lock(root: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the repository's `--staged` lock (freed by the kernel even after a kill -9)."""
    directory = _repo_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "lock").open("a+b") as handle:
        flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def staged_content(project: Path) -> Iterator[Path | None]:
    """Run the body on the index's content; yields the backup directory (None: nothing was
    unstaged). The work tree is restored however the body ends."""
    root = repo_root(project)
    with _repo_lock(root, wait=False) as locked:
        if not locked:
            raise UsageError("another `spruce run --staged` is running in this repository")
        _recover(root)
        unstaged = _differing_from_index(root)
        if not unstaged:
            yield None
            return
        backup = _repo_dir(root) / f"{int(time.time())}-{os.getpid()}"
        _set_aside(root, unstaged, backup)
        try:
            yield backup
        finally:
            with _signals_deferred():
                _put_back(root, backup, only_if_untouched=False)


def recover_leftovers(project: Path) -> list[str]:
    """Put back what a killed `--staged` run left set aside; returns what to tell the user."""
    try:
        root = repo_root(project)
    except UsageError:
        return []
    if not _repo_dir(root).is_dir():
        return []
    with _repo_lock(root, wait=False) as locked:
        return _recover(root) if locked else []


def _differing_from_index(root: Path) -> list[str]:
    """Tracked files whose work-tree content or mode differs from the index."""
    return git_lines(root, "diff-files", "--name-only", "--ignore-submodules")


def _set_aside(root: Path, paths: list[str], backup: Path) -> None:
    """Copy each file into `backup`, record it in the manifest, then check out the index."""
    backup.mkdir(parents=True)
    entries: dict[str, dict[str, Any]] = {}
    for number, path in enumerate(paths):
        entries[path] = _save(root / path, backup / f"{number}.bin")
    _write_manifest(backup, {"root": str(root), "pid": os.getpid(), "files": entries})
    # A patch too, for a person who wants to look or apply it by hand.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        patch = subprocess.run(
            ["git", *_GIT_CONFIG, "diff", "--binary", "--no-color", "--no-ext-diff", "--", *paths],
            cwd=root,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        (backup / "unstaged.patch").write_bytes(patch.stdout)
    _checkout_index(root, paths)
    for path, entry in entries.items():
        entry["left"] = _digest(root / path)  # what the run starts from, to spot later edits
    _write_manifest(backup, {"root": str(root), "pid": os.getpid(), "files": entries})


def _save(source: Path, copy: Path) -> dict[str, Any]:
    if source.is_symlink():
        return {"kind": "symlink", "target": os.readlink(source)}
    if not source.exists():
        return {"kind": "deleted"}
    shutil.copyfile(source, copy)
    return {"kind": "file", "copy": copy.name, "mode": source.stat().st_mode & 0o7777}


def _checkout_index(root: Path, paths: list[str]) -> None:
    done = subprocess.run(
        ["git", *_GIT_CONFIG, "checkout-index", "--force", "-z", "--stdin"],
        cwd=root,
        input=b"".join(os.fsencode(path) + b"\0" for path in paths),
        capture_output=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise UsageError(f"git checkout-index failed: {os.fsdecode(done.stderr).strip()}")


def _put_back(root: Path, backup: Path, *, only_if_untouched: bool) -> list[str]:
    """Restore every file of `backup`; returns the paths kept back (changed since)."""
    manifest = json.loads((backup / MANIFEST).read_text(encoding="utf-8"))
    kept = []
    for path, entry in manifest["files"].items():
        target = root / path
        if only_if_untouched and _digest(target) != entry.get("left"):
            kept.append(path)
            continue
        _restore(target, backup, entry)
    if not kept:
        shutil.rmtree(backup)
    return kept


def _restore(target: Path, backup: Path, entry: dict[str, Any]) -> None:
    if target.is_symlink() or (target.exists() and entry["kind"] != "file"):
        target.unlink()
    if entry["kind"] == "symlink":
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(entry["target"], target)
    elif entry["kind"] == "file":
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.spruce-restore")
        shutil.copyfile(backup / entry["copy"], temporary)
        os.chmod(temporary, entry["mode"])
        os.replace(temporary, target)


def _recover(root: Path) -> list[str]:
    """Restore the backups a killed run left (the caller holds the repository's lock)."""
    notes = []
    for backup in sorted(_repo_dir(root).iterdir()):
        if not (backup / MANIFEST).is_file():
            continue
        kept = _put_back(root, backup, only_if_untouched=True)
        if kept:
            notes.append(
                f"unstaged changes set aside by an interrupted `spruce run --staged` were not "
                f"put back into {', '.join(kept)} (changed since); the copies are in {backup}"
            )
        else:
            notes.append(
                "restored the unstaged changes an interrupted `spruce run --staged` set aside"
            )
    return notes


def _digest(path: Path) -> str:
    if path.is_symlink():
        return "symlink:" + os.readlink(path)
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    except FileNotFoundError:
        return "deleted"


def _write_manifest(backup: Path, manifest: dict[str, Any]) -> None:
    temporary = backup / (MANIFEST + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
        _sync(handle)
    os.replace(temporary, backup / MANIFEST)


def _sync(handle: IO[str]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Let a second Ctrl-C or SIGTERM wait until the work tree is back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
