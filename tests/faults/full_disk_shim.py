"""Run spruce with a SQLite store that answers SQLITE_FULL while a flag file exists.

Usage: python full_disk_shim.py FLAG_FILE SPRUCE_ARGS...  (for hosts where tmpfs cannot be
mounted; the fault enters at the same boundary as a real full disk: the SQLite write)
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def patch_sqlite(flag: Path, setattr_: Callable[[Any, str, Any], None]) -> None:
    """Make every SQLite event-log write fail as on a full disk while `flag` exists."""
    from spruce.store.sqlite import SQLiteEventLog

    write = SQLiteEventLog._write

    def full_disk_write(self: SQLiteEventLog, *args: Any) -> None:
        if flag.exists():
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = sqlite3.SQLITE_FULL
            raise error
        write(self, *args)

    setattr_(SQLiteEventLog, "_write", full_disk_write)


def main() -> None:
    from spruce.cli import run_main

    patch_sqlite(Path(sys.argv[1]), setattr)
    sys.argv = ["spruce", *sys.argv[2:]]
    run_main()


if __name__ == "__main__":
    main()
