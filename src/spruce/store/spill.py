"""Spill files: events a remote log could not take, kept as JSON lines for `spruce import`.

A spill file holds each event's wire JSON on its own line, each job's events in seq order.
Importing appends them to any store and skips the ones it already has, so it can run twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Final

import msgspec

from spruce.errors import CursorReset, EventDecodeError, StoreError, UsageError
from spruce.events import Event, decode_event
from spruce.store.base import EventLog

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
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Exclusive create: never mix our lines into another process's file.
                self._file = open(self.path, "xb")  # noqa: SIM115 - closed in close()
            for body in bodies:
                self._file.write(body + b"\n")
                self.events_written += 1
            self._file.flush()
        except OSError as exc:
            raise StoreError(f"cannot write spill file {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the file if it was ever opened."""
        if self._file is not None:
            self._file.close()
            self._file = None


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

    Raises StoreError if an event would leave a gap in its job's seq, or if the log holds a
    different event at a seq the file also has.
    """
    last: dict[str, int] = {}
    held: dict[str, list[Event]] = {}
    fresh: list[Event] = []
    for event in read_spill(path):
        if event.job_id not in last:
            last[event.job_id] = await log.last_seq(event.job_id)
        if event.seq <= last[event.job_id]:
            held.setdefault(event.job_id, []).append(event)
        else:
            fresh.append(event)
    for job_events in held.values():
        await _check_same(log, job_events)
    for start in range(0, len(fresh), _IMPORT_BATCH):
        await log.append(fresh[start : start + _IMPORT_BATCH])
    skipped = sum(len(job_events) for job_events in held.values())
    return ImportReport(jobs=len(last), imported=len(fresh), skipped=skipped)


async def _check_same(log: EventLog, events: list[Event]) -> None:
    """Refuse to skip an event when the log holds another one at its seq (a reused job id)."""
    wanted = {event.seq: event for event in events}
    after = min(wanted) - 1
    while after < max(wanted):
        try:
            page = await log.read(events[0].job_id, after=after, limit=_IMPORT_BATCH)
        except CursorReset as reset:  # retention removed them: nothing left to compare
            after = int(reset.resume_after)
            continue
        if not page:
            return
        for stored in page:
            mine = wanted.get(stored.seq)
            if mine is not None and mine != stored:
                raise StoreError(
                    f"job {stored.job_id}: seq {stored.seq} is already stored with other"
                    " content; the file holds another job of the same id"
                )
        after = page[-1].seq
