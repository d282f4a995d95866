"""`sqlite:///PATH.db`: the embedded default log; WAL, one short writer transaction per batch.

Several processes may write one file at once: `BEGIN IMMEDIATE` plus `busy_timeout` serialise
them, and readers in other processes notice commits cheaply through `PRAGMA data_version`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

import msgspec

from spruce.errors import CursorReset, SequenceConflictError, StoreError, StoreUnavailableError
from spruce.events import Event, decode_event, encode_event
from spruce.store.base import (
    READ_LIMIT,
    RUNNER_MEMORY,
    AutoRetention,
    ChangeSignal,
    GcReport,
    JobRecord,
    JobStatus,
    Retention,
    end_status,
    job_fields_from,
    keep_days_cutoff,
    parse_int_cursor,
)

T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (job_id, seq)
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    workflow TEXT,
    project TEXT,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    last_seq INTEGER NOT NULL,
    first_seq INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS jobs_by_start ON jobs (started_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_RUNNER_KEY: Final = "runner:"
_BUSY_TIMEOUT_MS: Final = 30_000
_POLL_SECONDS: Final = 0.01
_LOCK_RETRIES: Final = 50
_log: Final = logging.getLogger("spruce.store.sqlite")


class SQLiteEventLog:
    """Events, the jobs index and the firehose in one SQLite file shared by many processes."""

    def __init__(self, path: Path, *, url: str | None = None, retention: Retention | None = None):
        self.path = path
        self.url = url or f"sqlite://{path}"
        self.retention = retention or Retention()
        self._signal = ChangeSignal()
        # One thread per connection: sqlite3 connections stay on the thread that uses them.
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="spruce-sqlite-w")
        self._read_pool = ThreadPoolExecutor(1, thread_name_prefix="spruce-sqlite-r")
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._poller: asyncio.Task[None] | None = None
        self._data_version = 0
        self._auto_retention = AutoRetention()

    @property
    def version(self) -> int:
        return self._signal.version

    # lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.path.parent}: {exc}") from exc
        self._writer = await self._on_writer(self._connect_writer)
        self._reader = await self._on_reader(self._connect)
        self._data_version = await self._on_reader(self._read_data_version)

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        for conn, pool in ((self._writer, self._write_pool), (self._reader, self._read_pool)):
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(pool, conn.close)
            pool.shutdown(wait=True)
        self._writer = self._reader = None

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        conn.execute("PRAGMA synchronous = NORMAL")
        _retry_locked(lambda: self._create_schema(conn))
        return conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            _roll_back(conn)
            raise

    # writing -------------------------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        rows = [(e.job_id, e.seq, encode_event(e)) for e in events]
        await self._on_writer(lambda: _retry_locked(lambda: self._write(events, rows)))
        self._signal.bump()
        if self._auto_retention.due(events):
            try:
                await self.gc(self.retention)
            except StoreError as exc:  # retention is housekeeping: it never fails an append
                _log.warning("automatic retention on %s failed: %s", self.url, exc)

    def _write(self, events: Sequence[Event], rows: list[tuple[str, int, bytes]]) -> None:
        conn = self._require(self._writer)
        conn.execute("BEGIN IMMEDIATE")
        try:
            jobs = self._check_continuity(conn, events)
            conn.executemany("INSERT INTO events (job_id, seq, body) VALUES (?, ?, ?)", rows)
            for record, is_new in jobs.values():
                self._save_job(conn, record, is_new=is_new)
            conn.execute("COMMIT")
        except BaseException:
            _roll_back(conn)
            raise

    def _check_continuity(
        self, conn: sqlite3.Connection, events: Sequence[Event]
    ) -> dict[str, tuple[JobRecord, bool]]:
        jobs: dict[str, tuple[JobRecord, bool]] = {}
        for event in events:
            entry = jobs.get(event.job_id)
            if entry is None:
                stored = _job_row(conn, event.job_id)
                if stored is None:
                    workflow, project = job_fields_from(event)
                    entry = (
                        JobRecord(
                            job_id=event.job_id,
                            workflow=workflow,
                            project=project,
                            started_at=event.timestamp,
                        ),
                        True,
                    )
                else:
                    entry = (stored, False)
            record, is_new = entry
            if event.seq != record.last_seq + 1:
                raise SequenceConflictError(
                    f"job {event.job_id}: seq {event.seq} does not follow {record.last_seq}"
                )
            # A new record only when the status changes; otherwise just move last_seq (hot path).
            status: JobStatus | None = end_status(event) if event.is_end else None
            if status is not None:
                record = msgspec.structs.replace(
                    record, status=status, ended_at=event.timestamp, last_seq=event.seq
                )
            else:
                record = msgspec.structs.replace(record, last_seq=event.seq)
            jobs[event.job_id] = (record, is_new)
        return jobs

    @staticmethod
    def _save_job(conn: sqlite3.Connection, r: JobRecord, *, is_new: bool) -> None:
        if is_new:
            conn.execute(
                "INSERT INTO jobs (job_id, workflow, project, status, started_at, ended_at,"
                " last_seq, first_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.job_id,
                    r.workflow,
                    r.project,
                    r.status,
                    r.started_at,
                    r.ended_at,
                    r.last_seq,
                    r.first_seq,
                ),
            )
        else:
            conn.execute(
                "UPDATE jobs SET status = ?, ended_at = ?, last_seq = ? WHERE job_id = ?",
                (r.status, r.ended_at, r.last_seq, r.job_id),
            )

    # reading -------------------------------------------------------------------------------

    async def last_seq(self, job_id: str) -> int:
        record = await self.get_job(job_id)
        return record.last_seq if record else 0

    async def read(self, job_id: str, *, after: int = 0, limit: int = READ_LIMIT) -> list[Event]:
        def query() -> tuple[int | None, list[bytes]]:
            conn = self._require(self._reader)
            first = conn.execute(
                "SELECT first_seq FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if first is None:
                return None, []
            rows = conn.execute(
                "SELECT body FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (job_id, after, limit),
            ).fetchall()
            return int(first[0]), [row[0] for row in rows]

        first_seq, bodies = await self._on_reader(query)
        if first_seq is not None and after < first_seq - 1:
            raise CursorReset(after, first_seq, first_seq - 1)
        return [decode_event(body) for body in bodies]

    async def read_all(
        self, *, after: str | None = None, limit: int = READ_LIMIT
    ) -> list[tuple[str, Event]]:
        position = parse_int_cursor(after)

        def query() -> tuple[int, list[tuple[int, bytes]]]:
            conn = self._require(self._reader)
            floor = conn.execute("SELECT value FROM meta WHERE key = 'floor'").fetchone()
            rows = conn.execute(
                "SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT ?", (position, limit)
            ).fetchall()
            return (int(floor[0]) if floor else 0), rows

        floor, rows = await self._on_reader(query)
        if position < floor:
            raise CursorReset(after or "0", str(floor + 1), str(floor))
        return [(str(row_id), decode_event(body)) for row_id, body in rows]

    async def head(self) -> str:
        def query() -> int:
            row = self._require(self._reader).execute("SELECT MAX(id) FROM events").fetchone()
            return int(row[0] or 0)

        return str(await self._on_reader(query))

    async def get_job(self, job_id: str) -> JobRecord | None:
        return await self._on_reader(lambda: _job_row(self._require(self._reader), job_id))

    async def list_jobs(self, *, limit: int = 100) -> list[JobRecord]:
        def query() -> list[JobRecord]:
            rows = (
                self._require(self._reader)
                .execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY started_at DESC LIMIT ?", (limit,)
                )
                .fetchall()
            )
            return [_record(row) for row in rows]

        return await self._on_reader(query)

    @property
    def spill_path(self) -> Path | None:
        return None  # a refused write is the bus's to keep (see WorkflowEventBus)

    # runners' heartbeats (rows "runner:NAME" of the meta table: "COUNTER WRITTEN_AT") --------

    async def beat(self, runner: str, value: int | None) -> None:
        key = _RUNNER_KEY + runner

        def write() -> None:
            conn = self._require(self._writer)
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
                return
            now = time.time()
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, f"{value} {now!r}"),
            )
            # The writer's own clock dates the row for this clean-up only, never for liveness.
            conn.execute(
                "DELETE FROM meta WHERE key GLOB 'runner:*'"
                " AND CAST(substr(value, instr(value, ' ') + 1) AS REAL) < ?",
                (now - RUNNER_MEMORY,),
            )

        await self._on_writer(lambda: _retry_locked(write))

    async def heartbeat(self, runner: str) -> int | None:
        def read() -> int | None:
            row = (
                self._require(self._reader)
                .execute("SELECT value FROM meta WHERE key = ?", (_RUNNER_KEY + runner,))
                .fetchone()
            )
            return None if row is None else int(str(row[0]).split(" ", 1)[0])

        return await self._on_reader(read)

    async def reopen(self, job_id: str, seq: int) -> None:
        def write() -> None:
            conn = self._require(self._writer)
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT e.body FROM events e JOIN jobs j ON j.job_id = e.job_id"
                    " WHERE e.job_id = ? AND e.seq = ? AND j.last_seq = ?",
                    (job_id, seq, seq),
                ).fetchone()
                if row is None or not decode_event(row[0]).is_end:
                    raise SequenceConflictError(
                        f"job {job_id}: seq {seq} is not its stored end event"
                    )
                conn.execute("DELETE FROM events WHERE job_id = ? AND seq = ?", (job_id, seq))
                conn.execute(
                    "UPDATE jobs SET status = 'running', ended_at = NULL, last_seq = ?"
                    " WHERE job_id = ?",
                    (seq - 1, job_id),
                )
                conn.execute("COMMIT")
            except BaseException:
                _roll_back(conn)
                raise

        await self._on_writer(lambda: _retry_locked(write))
        self._signal.bump()

    # waiting -------------------------------------------------------------------------------

    async def wait(self, seen: int, timeout: float) -> None:
        if self._poller is None and self._reader is not None:
            self._poller = asyncio.create_task(self._poll(), name="spruce-sqlite-poll")
        await self._signal.wait(seen, timeout)

    async def _poll(self) -> None:
        """Bump the signal when any connection (ours or another process's) commits."""
        while True:
            await asyncio.sleep(_POLL_SECONDS)
            try:
                current = await self._on_reader(self._read_data_version)
            except (sqlite3.Error, StoreError):
                continue
            if current != self._data_version:
                self._data_version = current
                self._signal.bump()

    def _read_data_version(self) -> int:
        row = self._require(self._reader).execute("PRAGMA data_version").fetchone()
        return int(row[0])

    # retention -----------------------------------------------------------------------------

    async def gc(self, retention: Retention) -> GcReport:
        report = await self._on_writer(lambda: _retry_locked(lambda: self._gc(retention)))
        if report.events_removed:
            self._signal.bump()
        return report

    def _gc(self, retention: Retention) -> GcReport:
        conn = self._require(self._writer)
        cutoff = keep_days_cutoff(retention, time.time())
        conn.execute("BEGIN IMMEDIATE")
        try:
            doomed = [
                row[0]
                for row in conn.execute(
                    "SELECT job_id FROM jobs ORDER BY started_at DESC LIMIT -1 OFFSET ?",
                    (retention.keep_jobs if retention.keep_jobs is not None else 2**62,),
                )
            ]
            doomed += [
                row[0]
                for row in conn.execute("SELECT job_id FROM jobs WHERE started_at < ?", (cutoff,))
            ]
            doomed = list(dict.fromkeys(doomed))
            events_removed, top = 0, 0
            for job_id in doomed:
                top = max(top, _max_id(conn, "job_id = ?", (job_id,)))
                events_removed += conn.execute(
                    "DELETE FROM events WHERE job_id = ?", (job_id,)
                ).rowcount
                conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            if retention.max_events_per_job is not None:
                trimmed, trimmed_top = self._trim(conn, retention.max_events_per_job)
                events_removed += trimmed
                top = max(top, trimmed_top)
            if top:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('floor', ?) ON CONFLICT (key)"
                    " DO UPDATE SET value = MAX(CAST(value AS INTEGER), excluded.value)",
                    (top,),
                )
            conn.execute("COMMIT")
        except BaseException:
            _roll_back(conn)
            raise
        return GcReport(jobs_removed=len(doomed), events_removed=events_removed)

    @staticmethod
    def _trim(conn: sqlite3.Connection, keep: int) -> tuple[int, int]:
        removed, top = 0, 0
        rows = conn.execute(
            "SELECT job_id, last_seq FROM jobs WHERE last_seq - first_seq + 1 > ?", (keep,)
        ).fetchall()
        for job_id, last_seq in rows:
            first = last_seq - keep + 1
            top = max(top, _max_id(conn, "job_id = ? AND seq < ?", (job_id, first)))
            removed += conn.execute(
                "DELETE FROM events WHERE job_id = ? AND seq < ?", (job_id, first)
            ).rowcount
            conn.execute("UPDATE jobs SET first_seq = ? WHERE job_id = ?", (first, job_id))
        return removed, top

    # plumbing ------------------------------------------------------------------------------

    async def _on_writer(self, fn: Callable[[], T]) -> T:
        return await self._run(self._write_pool, fn)

    async def _on_reader(self, fn: Callable[[], T]) -> T:
        return await self._run(self._read_pool, fn)

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn)
        except sqlite3.Error as exc:
            raise self._store_error(exc) from exc

    def _store_error(self, exc: sqlite3.Error) -> StoreError:
        """StoreUnavailableError for what may pass (a full disk, I/O, locks), naming a full disk
        as such; StoreError for what will not (a read-only or corrupt file)."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
        full = code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and _no_room(self.path))
        if full:
            return StoreUnavailableError(f"disk full: {self.path} ({exc})")
        if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return StoreUnavailableError(f"{self.path}: {exc}")
        return StoreError(f"{self.path}: {exc}")

    def _require(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        if conn is None:
            raise StoreError(f"{self.url} is not open")
        return conn


_JOB_COLUMNS: Final = "job_id, workflow, project, status, started_at, ended_at, last_seq, first_seq"


def _record(row: tuple[object, ...]) -> JobRecord:
    job_id, workflow, project, status, started, ended, last_seq, first_seq = row
    return JobRecord(
        job_id=str(job_id),
        workflow=workflow if isinstance(workflow, str) else None,
        project=project if isinstance(project, str) else None,
        status=status,  # type: ignore[arg-type]
        started_at=float(started),  # type: ignore[arg-type]
        ended_at=float(ended) if ended is not None else None,  # type: ignore[arg-type]
        last_seq=int(last_seq),  # type: ignore[call-overload]
        first_seq=int(first_seq),  # type: ignore[call-overload]
    )


def _job_row(conn: sqlite3.Connection, job_id: str) -> JobRecord | None:
    row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return _record(row) if row else None


def _max_id(conn: sqlite3.Connection, where: str, params: tuple[object, ...]) -> int:
    row = conn.execute(f"SELECT MAX(id) FROM events WHERE {where}", params).fetchone()
    return int(row[0] or 0)


def _no_room(path: Path) -> bool:
    """Whether the file system holding `path` has less than a page left."""
    try:
        return shutil.disk_usage(path.parent).free < 65_536
    except OSError:
        return False


def _roll_back(conn: sqlite3.Connection) -> None:
    """Undo an open transaction; SQLite may have undone it already (it does on a full disk), and
    a failing ROLLBACK must not hide the error that caused it."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _retry_locked(fn: Callable[[], T]) -> T:
    """Call `fn`, retrying while another process holds the database past busy_timeout."""
    for attempt in range(_LOCK_RETRIES):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(min(0.01 * 2**attempt, 0.5))
    return fn()
