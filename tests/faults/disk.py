"""A disk that a test can fill and free: a real tmpfs mounted for the test when running as root,
otherwise a SQLite store whose writes fail with SQLITE_FULL while a flag file exists.

Both ways the spruce processes under test see the same thing at the store boundary: SQLite
answering "database or disk is full".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

SHIM: Final = Path(__file__).with_name("full_disk_shim.py")
_SIZE: Final = "2m"


class Disk:
    """Where the event log lives, and how to take its space away and give it back."""

    def __init__(self, root: Path, *, mounted: bool) -> None:
        self.root = root
        self.mounted = mounted
        self._filler = root / "filler"
        self.flag = root.parent / "disk-full.flag"

    @property
    def store_url(self) -> str:
        return f"sqlite://{self.root / 'events.db'}"

    def fill(self) -> None:
        """Take every free byte (or raise the flag the shim obeys)."""
        if not self.mounted:
            self.flag.touch()
            return
        block = b"\0" * 4096
        with self._filler.open("ab", buffering=0) as filler, contextlib.suppress(OSError):
            while True:  # until ENOSPC: full, as wanted
                filler.write(block)

    def free(self) -> None:
        """Give the space back."""
        self.flag.unlink(missing_ok=True)
        self._filler.unlink(missing_ok=True)

    def spruce(self, *args: str) -> list[str]:
        """The argv of a spruce command that sees this disk."""
        if self.mounted:
            return [sys.executable, "-m", "spruce", *args]
        return [sys.executable, str(SHIM), str(self.flag), *args]


@contextlib.contextmanager
def small_disk(tmp_path: Path) -> Iterator[Disk]:
    """A 2 MB tmpfs at tmp_path/disk when mount is permitted, else the injected full disk."""
    root = tmp_path / "disk"
    root.mkdir()
    mount = shutil.which("mount")
    mounted = False
    # SPRUCE_FAULTS_NO_MOUNT=1 runs the injected variant on a host that could mount.
    if os.geteuid() == 0 and mount is not None and not os.environ.get("SPRUCE_FAULTS_NO_MOUNT"):
        result = subprocess.run(
            [mount, "-t", "tmpfs", "-o", f"size={_SIZE}", "tmpfs", str(root)],
            capture_output=True,
            timeout=10,
            check=False,
        )
        mounted = result.returncode == 0
    try:
        yield Disk(root, mounted=mounted)
    finally:
        if mounted:
            subprocess.run(
                ["umount", "-l", str(root)], capture_output=True, timeout=10, check=False
            )
