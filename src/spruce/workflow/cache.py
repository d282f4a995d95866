"""The result cache: a hook whose tool, version, arguments, config files and input files are
unchanged is answered from its last passed or failed result (never a crash or a timeout).

Entries are small files under the user's cache directory; the directory is kept under a size
limit by removing the least recently used entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import msgspec

from spruce.hooks.base import HookResult

CACHE_ENV: Final = "SPRUCE_CACHE_DIR"
MAX_BYTES: Final = 64 * 1024 * 1024
# Config files any tool may read; a change to one re-runs every hook.
CONFIG_FILES: Final = (
    "pyproject.toml", "setup.cfg", "tox.ini", "ruff.toml", ".ruff.toml", "mypy.ini",
    ".mypy.ini", ".codespellrc", ".bandit", "pytest.ini", "conftest.py", ".coveragerc",
)  # fmt: skip
_CACHEABLE: Final = frozenset({"passed", "failed"})
_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(HookResult)


def default_cache_dir() -> Path:
    """`SPRUCE_CACHE_DIR`, else `results/` in the user's cache directory for spruce."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("spruce")) / "results"


def project_state_dir(cache_dir: Path, project: Path) -> Path:
    """A project's directory for tools' incremental state (mypy's cache), beside the results."""
    digest = hashlib.sha256(str(project).encode()).hexdigest()[:16]
    return cache_dir / "state" / digest


def cache_key(
    identity: Sequence[str],
    inputs: Iterable[tuple[str, str]],
    config: Iterable[tuple[str, str]],
) -> str:
    """A hash of everything that decides a hook's result: (path, digest) pairs of its inputs."""
    document = json.dumps([list(identity), sorted(inputs), sorted(config)], separators=(",", ":"))
    return hashlib.sha256(document.encode()).hexdigest()


def cache_env_values(names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The `cache_env` variables as key parts; an unset variable differs from an empty one."""
    return tuple(
        (f"env:{name}", "\0unset" if (value := os.environ.get(name)) is None else value)
        for name in sorted(set(names))
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Write a whole file: a reader sees the old content or the new one, never half, also
    when several runs write it at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{id(data)}.tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


class ResultCache:
    """Stored hook results by cache key."""

    def __init__(self, directory: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._written = 0

    def get(self, key: str) -> HookResult | None:
        """The stored result, marked `cached`, or None."""
        path = self._path(key)
        try:
            result = _decoder.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used goes first when pruning
        return msgspec.structs.replace(result, cached=True)

    def put(self, key: str, result: HookResult) -> None:
        """Store a passed or failed result; errors, timeouts and crashes are never cached."""
        # A skip the tool itself reported (pytest's "no tests") is a result; spruce's skips are not.
        if result.status not in _CACHEABLE and not (
            result.status == "skipped" and result.exit_code is not None
        ):
            return
        self.put_bytes(key, _encoder.encode(msgspec.structs.replace(result, cached=False)))

    def get_bytes(self, key: str) -> bytes | None:
        """A stored document of another kind (per-file results, a test map), or None."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return data

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store a document atomically: a reader sees the old one or the new one, never half."""
        with contextlib.suppress(OSError):
            write_atomically(self._path(key), data)
            self._written += len(data)

    def prune(self) -> None:
        """Remove the least recently used entries while the directory exceeds its limit."""
        if self._written == 0:
            return
        entries = []
        with contextlib.suppress(OSError):
            for child in self.directory.glob("*/*.json"):
                with contextlib.suppress(OSError):
                    stat = child.stat()
                    entries.append((stat.st_mtime, stat.st_size, child))
        # A writer killed mid-write leaves its temporary file; an hour later it is litter.
        with contextlib.suppress(OSError):
            for child in self.directory.glob("*/*.tmp"):
                with contextlib.suppress(OSError):
                    if child.stat().st_mtime < time.time() - 3600:
                        child.unlink()
        total = sum(size for _, size, _ in entries)
        for _, size, child in sorted(entries):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                child.unlink()
                total -= size

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"
