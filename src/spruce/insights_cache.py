"""Job summaries already folded, kept in a small SQLite file beside the result cache.

A finished job's events never change, so `spruce stats` reads each job's events once: later
calls read one compact row per job instead (measured by bench/stats.py). Rows are keyed by the
store's URL and the job id, and checked against the job's start time and last seq, so a job id
reused after gc, or a log that another store URL names, never answers with a stale summary.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import msgspec

from spruce.insights import JobSummary
from spruce.store.base import JobRecord

_BATCH: Final = 500  # job ids per query (SQLite allows 999 bound parameters by default)
MAX_ROWS: Final = 50_000  # the newest rows kept; older ones go (they are only a cache)
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS summaries (
    store TEXT NOT NULL, job_id TEXT NOT NULL, started_at REAL NOT NULL, last_seq INTEGER NOT NULL,
    body BLOB NOT NULL, PRIMARY KEY (store, job_id)
)
"""
_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(JobSummary)


def default_path() -> Path:
    """`insights.db` in spruce's result cache directory (`SPRUCE_CACHE_DIR` moves it too)."""
    from spruce.workflow.cache import default_cache_dir

    return default_cache_dir() / "insights.db"


def cacheable(store_url: str) -> bool:
    """An in-memory log is private to its process: its URL names no shared log."""
    return not store_url.startswith("memory:")


class SummaryCache:
    """Summaries by (store URL, job id); every failure to read or write is only a cache miss."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # one connection, used from worker threads one at a time
        self._conn: sqlite3.Connection | None = None

    def get_many(self, store: str, records: Sequence[JobRecord]) -> dict[str, JobSummary]:
        """The stored summaries of these jobs that are still current."""
        wanted = {record.job_id: record for record in records}
        found: dict[str, JobSummary] = {}
        if not cacheable(store):
            return found
        with self._lock:
            try:
                rows = self._rows(store, list(wanted))
                for job_id, started_at, last_seq, body in rows:
                    record = wanted.get(job_id)
                    if record is None or (started_at, last_seq) != (
                        record.started_at,
                        record.last_seq,
                    ):
                        continue
                    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                        found[job_id] = _decoder.decode(body)
            except (OSError, sqlite3.Error):
                pass  # a miss: the summaries are folded from the events again
        return found

    def _rows(self, store: str, job_ids: list[str]) -> list[tuple[str, float, int, bytes]]:
        """The stored rows of these jobs, asked for in batches of bound parameters."""
        conn = self._open()
        rows = []
        for start in range(0, len(job_ids), _BATCH):
            batch = job_ids[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            rows += conn.execute(
                "SELECT job_id, started_at, last_seq, body FROM summaries"
                f" WHERE store = ? AND job_id IN ({marks})",
                (store, *batch),
            ).fetchall()
        return rows

    def put_many(self, store: str, entries: Sequence[tuple[JobRecord, JobSummary]]) -> None:
        """Store these summaries, then drop the oldest rows past MAX_ROWS."""
        if not entries or not cacheable(store):
            return
        rows = [
            (store, record.job_id, record.started_at, record.last_seq, _encoder.encode(summary))
            for record, summary in entries
        ]
        with self._lock, contextlib.suppress(OSError, sqlite3.Error):
            conn = self._open()
            with conn:
                conn.executemany("INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?, ?)", rows)
                conn.execute(
                    "DELETE FROM summaries WHERE rowid IN (SELECT rowid FROM summaries"
                    " ORDER BY started_at DESC LIMIT -1 OFFSET ?)",
                    (MAX_ROWS,),
                )

    def close(self) -> None:
        """Close the file (it reopens on the next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _open(self) -> sqlite3.Connection:
        """The connection, opened (and the table made) on first use; call with the lock held."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn
