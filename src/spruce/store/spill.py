"""Spill files: events a remote log could not take, kept as JSON lines for `spruce import`.

A spill file holds each event's wire JSON on its own line, each job's events in seq order.
Importing appends them to any store and skips the ones it already has, so it can run twice.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Final

import msgspec

from spruce.errors import (
    CursorReset,
    EventDecodeError,
    SequenceConflictError,
    StoreError,
    UsageError,
)
from spruce.events import Event, decode_event
from spruce.store.base import EventLog, is_reaped_end

_IMPORT_BATCH: Final = 1000


def default_spill_dir() -> Path:
    """`spruce/spill/` in the user's state directory."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("spruce")) / "spill"


class SpillFile:
    """An append-only JSON-lines file, created on the first write, flushed after each one."""

    def __init__(self, directory: Path, *, stem: str) -> None:
        self.path = directory / f"{stem}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"
        self.events_written = 0
        self._file: IO[bytes] | None = None

    def write(self, bodies: Iterable[bytes]) -> None:
        """Append encoded events; raises StoreError if the file cannot be written."""
        written, good = 0, 0
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Exclusive create: never mix our lines into another process's file.
                self._file = open(self.path, "xb")  # noqa: SIM115 - closed in close()
            good = self._file.tell()
            for body in bodies:
                self._file.write(body + b"\n")
                written += 1
            self._file.flush()
        except OSError as exc:
            self._cut_back(good)
            raise StoreError(f"cannot write spill file {self.path}: {exc}") from exc
        self.events_written += written

    def _cut_back(self, good: int) -> None:
        """After a failed write, drop its partial lines so the file stays importable."""
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            self._file.close()
        self._file = None
        with contextlib.suppress(OSError):
            os.truncate(self.path, good)

    def close(self) -> None:
        """Close the file if it was ever opened."""
        if self._file is not None:
            self._file.close()
            self._file = None


class SpillKeeper:
    """Keeps events a log would not take in a spill file; when that cannot be written (it may
    sit on the same full disk), in one under the temporary directory instead."""

    def __init__(self, directory: Path | None, *, stem: str) -> None:
        self._dirs = [
            directory or default_spill_dir(),
            Path(tempfile.gettempdir()) / "spruce-spill",
        ]
        self._stem = stem
        self._file: SpillFile | None = None
        self._failure: StoreError | None = None
        self.lost = 0  # events no spill file took

    @property
    def path(self) -> Path | None:
        """The file holding the kept events, if any were kept."""
        return self._file.path if self._file and self._file.events_written else None

    @property
    def written(self) -> int:
        """How many events the current file holds."""
        return self._file.events_written if self._file else 0

    def keep(self, bodies: Sequence[bytes]) -> None:
        """Write encoded events; count them as lost when no place takes them."""
        while self._dirs:
            if self._file is None:
                self._file = SpillFile(self._dirs[0], stem=self._stem)
            try:
                self._file.write(bodies)
                return
            except StoreError as exc:
                self._failure = exc
                self._file.close()
                self._file = None
                self._dirs.pop(0)
        self.lost += len(bodies)

    def describe(self, store_url: str) -> str:
        """Where the events are and how to load them, for the end of an error message."""
        told = ""
        if self.path is not None:
            told = (
                f"; {self.written} events were kept in {self.path}; load them"
                f" with: spruce import {self.path} --store {store_url}"
            )
        if self.lost:
            told += f"; {self.lost} events could not be kept: {self._failure}"
        return told

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class ImportReport(msgspec.Struct, frozen=True, kw_only=True):
    """What importing a spill file did."""

    jobs: int
    imported: int
    skipped: int


def read_spill(path: Path) -> Iterator[Event]:
    """The events of a spill file in file order; UsageError names a bad line."""
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield decode_event(line)
                except EventDecodeError as exc:
                    raise UsageError(f"{path}:{number}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


async def import_spill(log: EventLog, path: Path) -> ImportReport:
    """Append a spill file's events to `log`, skipping those its jobs already hold.

    All or nothing: the whole file is read and checked before anything is written, and its new
    events go to the log in one append.  A job the log shows ended by a reaper (its runner
    seemed gone) gets the runner's own events in place of that end event.  UsageError for a
    bad line or a gap in a job's seqs; SequenceConflictError if the log holds a different
    event at a seq the file also has (another job of the same id).
    """
    by_job: dict[str, list[Event]] = {}
    for event in read_spill(path):
        by_job.setdefault(event.job_id, []).append(event)
    reopen: dict[str, int] = {}
    fresh: list[Event] = []
    skipped = 0
    for job_id, events in by_job.items():
        last = await log.last_seq(job_id)
        held = [event for event in events if event.seq <= last]
        differs = await _first_difference(log, held) if held else None
        if differs is not None:
            reopen[job_id] = differs
            last = differs - 1
        new = [event for event in events if event.seq > last]
        skipped += len(events) - len(new)
        _check_follows(path, job_id, last, new)
        fresh.extend(new)
    for job_id, seq in reopen.items():
        await log.reopen(job_id, seq)
    if fresh:
        await log.append(fresh)
    return ImportReport(jobs=len(by_job), imported=len(fresh), skipped=skipped)


def _check_follows(path: Path, job_id: str, last: int, events: list[Event]) -> None:
    """UsageError unless the events continue the job's stored seq one by one."""
    for event in events:
        if event.seq != last + 1:
            raise UsageError(
                f"{path}: job {job_id}: seq {event.seq} does not follow {last};"
                " nothing was imported"
            )
        last = event.seq


async def _first_difference(log: EventLog, events: list[Event]) -> int | None:
    """The first seq at which the log holds another event than the file, if any.

    Only the job's last stored event may differ, and only when a reaper wrote it; anything
    else means the file holds another job of the same id.
    """
    wanted = {event.seq: event for event in events}
    after = min(wanted) - 1
    last = await log.last_seq(events[0].job_id)
    while after < max(wanted):
        try:
            page = await log.read(events[0].job_id, after=after, limit=_IMPORT_BATCH)
        except CursorReset as reset:  # retention removed them: nothing left to compare
            after = int(reset.resume_after)
            continue
        if not page:
            return None
        for stored in page:
            mine = wanted.get(stored.seq)
            if mine is None or mine == stored:
                continue
            if stored.seq == last and is_reaped_end(stored):
                return stored.seq
            raise SequenceConflictError(
                f"job {stored.job_id}: seq {stored.seq} is already stored with other"
                " content; the file holds another job of the same id"
            )
        after = page[-1].seq
    return None
