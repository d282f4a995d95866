"""Errors spruce raises; the CLI maps each branch to an exit code.

SpruceError
├── UsageError            bad arguments or configuration (exit 2)
│   └── ConfigError       an invalid [tool.spruce] key or value, named
├── EventDecodeError      untrusted JSON that is not a valid event
├── StoreError            the event log could not be opened, read or written
│   ├── StoreURLError     a --store URL no backend understands
│   ├── StoreUnavailableError  the log cannot take writes for now (a full disk)
│   └── SequenceConflictError  an event's seq does not continue its job as stored
├── UnknownJobError       no job with that id in the event log
├── JobExistsError        a job id that is already taken
└── CursorReset           the cursor points at events retention removed
"""

from __future__ import annotations


class SpruceError(Exception):
    """Base of every error spruce raises on purpose."""


class UsageError(SpruceError):
    """The caller asked for something that cannot work; exit code 2."""


class ConfigError(UsageError):
    """The project's [tool.spruce] configuration is invalid."""


class EventDecodeError(SpruceError):
    """A message is not a valid spruce event."""


class StoreError(SpruceError):
    """The event log failed."""


class StoreURLError(StoreError, UsageError):
    """A store URL that names no known backend or is malformed."""


class StoreUnavailableError(StoreError):
    """The log cannot take writes for a while (a full disk); the message names the cause."""


class SequenceConflictError(StoreError):
    """The log holds other events at these seqs: retrying the same events can never succeed."""


class UnknownJobError(SpruceError):
    """No job with this id exists in the event log."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} in the event log")
        self.job_id = job_id


class JobExistsError(UsageError):
    """A job with this id already exists."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} already exists; choose another --job-id")
        self.job_id = job_id


class CursorReset(SpruceError):
    """Retention removed events after the reader's cursor: a gap the reader must handle.

    `earliest` is the first seq (job reads) or cursor (all-jobs stream) still stored, and
    `resume_after` the cursor to read after to continue from there.
    """

    def __init__(self, cursor: str | int, earliest: str | int, resume_after: str | int) -> None:
        super().__init__(f"cursor {cursor} was removed by retention; earliest is {earliest}")
        self.cursor = cursor
        self.earliest = earliest
        self.resume_after = resume_after
