"""The structured results of spruce's MCP tools, and the JSON schemas the tools publish for them.

The schemas come from the same msgspec types that encode the results, so they cannot drift.
"""

from __future__ import annotations

from typing import Any

import msgspec

from spruce.events import Event
from spruce.store.base import JobRecord, JobStatus


class JobStarted(msgspec.Struct, frozen=True, kw_only=True):
    """A job was started; follow it with its id."""

    job_id: str


class EventsPage(msgspec.Struct, frozen=True, kw_only=True):
    """A job's events after a cursor, oldest first; pass `next_cursor` as `after` next time."""

    events: list[Event]
    next_cursor: int
    status: JobStatus


class JobList(msgspec.Struct, frozen=True, kw_only=True):
    """The newest jobs of the event log, newest first."""

    jobs: list[JobRecord]


class CancelOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What cancelling did: `cancelled` is false when the job had already ended."""

    job_id: str
    cancelled: bool
    status: JobStatus


class HookInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One hook a workflow can run."""

    id: str
    phase: str
    tool: str
    description: str
    enabled: bool
    available: bool
    hint: str | None = None


class HookList(msgspec.Struct, frozen=True, kw_only=True):
    """Every hook, in the order the workflows run them."""

    hooks: list[HookInfo]


def object_schema(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON schema of a result type with an object at its root, as MCP output schemas need."""
    schema = msgspec.json.schema(cls)
    defs: dict[str, Any] = schema["$defs"]
    root: dict[str, Any] = defs[cls.__name__]
    others = {name: value for name, value in defs.items() if name != cls.__name__}
    return {**root, "$defs": others} if others else dict(root)


def to_json_ready(value: msgspec.Struct) -> dict[str, Any]:
    """A result as plain JSON-ready data (enums as their string values)."""
    data: dict[str, Any] = msgspec.to_builtins(value)
    return data
