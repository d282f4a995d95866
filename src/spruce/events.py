"""The event model: `WorkflowEvent` names, the `Event` record and its wire JSON.

The wire shape is versioned: fields may be added, never renamed.
"""

from __future__ import annotations

import re
from enum import StrEnum, auto
from typing import Annotated, Any, Final

import msgspec

from spruce.errors import EventDecodeError, UsageError

# \Z, not $: "$" also matches before a trailing newline, and "abc\n" is no job id.
JOB_ID_PATTERN: Final = r"^[A-Za-z0-9._-]{1,64}\Z"
_JOB_ID_RE: Final = re.compile(JOB_ID_PATTERN)

JobId = Annotated[str, msgspec.Meta(pattern=JOB_ID_PATTERN)]
Seq = Annotated[int, msgspec.Meta(ge=1)]


class WorkflowEvent(StrEnum):
    """Every kind of event a job publishes; the value is the member's lower-case name."""

    WORKFLOW_SESSION_INITIALIZING = auto()
    WORKFLOW_SESSION_READY = auto()
    CONFIG_PHASE_STARTED = auto()
    CONFIG_PHASE_COMPLETED = auto()
    CONFIG_PHASE_FAILED = auto()
    QUALITY_PHASE_STARTED = auto()
    QUALITY_PHASE_COMPLETED = auto()
    QUALITY_PHASE_FAILED = auto()
    FAST_HOOKS_STARTED = auto()
    FAST_HOOKS_COMPLETED = auto()
    FAST_HOOKS_FAILED = auto()
    CODE_CLEANING_STARTED = auto()
    CODE_CLEANING_COMPLETED = auto()
    CODE_CLEANING_FAILED = auto()
    COMPREHENSIVE_HOOKS_STARTED = auto()
    COMPREHENSIVE_HOOKS_COMPLETED = auto()
    COMPREHENSIVE_HOOKS_FAILED = auto()
    HOOK_STRATEGY_STARTED = auto()
    HOOK_STRATEGY_COMPLETED = auto()
    HOOK_STRATEGY_FAILED = auto()
    HOOK_STARTED = auto()
    HOOK_COMPLETED = auto()
    HOOK_FAILED = auto()
    HOOK_SKIPPED = auto()
    TEST_PHASE_STARTED = auto()
    TEST_CASE_COMPLETED = auto()
    TEST_PHASE_COMPLETED = auto()
    TEST_PHASE_FAILED = auto()
    WORKFLOW_COMPLETED = auto()
    WORKFLOW_FAILED = auto()
    WORKFLOW_CANCELLED = auto()


END_EVENTS: Final = frozenset(
    {
        WorkflowEvent.WORKFLOW_COMPLETED,
        WorkflowEvent.WORKFLOW_FAILED,
        WorkflowEvent.WORKFLOW_CANCELLED,
    }
)

HOOK_END_EVENTS: Final = frozenset(
    {WorkflowEvent.HOOK_COMPLETED, WorkflowEvent.HOOK_FAILED, WorkflowEvent.HOOK_SKIPPED}
)

PHASE_END_EVENTS: Final = frozenset(
    {
        WorkflowEvent.CONFIG_PHASE_COMPLETED,
        WorkflowEvent.CONFIG_PHASE_FAILED,
        WorkflowEvent.FAST_HOOKS_COMPLETED,
        WorkflowEvent.FAST_HOOKS_FAILED,
        WorkflowEvent.CODE_CLEANING_COMPLETED,
        WorkflowEvent.CODE_CLEANING_FAILED,
        WorkflowEvent.COMPREHENSIVE_HOOKS_COMPLETED,
        WorkflowEvent.COMPREHENSIVE_HOOKS_FAILED,
        WorkflowEvent.TEST_PHASE_COMPLETED,
        WorkflowEvent.TEST_PHASE_FAILED,
    }
)


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One event of one job, exactly as it travels on the wire and sits in the log."""

    event: WorkflowEvent
    job_id: JobId
    seq: Seq
    step_id: str | None = None
    timestamp: float
    data: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def is_end(self) -> bool:
        """True for the one event that ends every job."""
        return self.event in END_EVENTS


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Event)


def encode_event(event: Event) -> bytes:
    """The event's wire JSON."""
    return _encoder.encode(event)


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as a plain JSON-ready dict (the same fields as the wire JSON)."""
    return {
        "event": event.event.value,
        "job_id": event.job_id,
        "seq": event.seq,
        "step_id": event.step_id,
        "timestamp": event.timestamp,
        "data": event.data,
    }


def decode_event(raw: bytes | str) -> Event:
    """Parse and validate one event from untrusted JSON; raises EventDecodeError, never more."""
    try:
        return _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise EventDecodeError(f"not a valid spruce event: {exc}") from None
    except RecursionError:  # msgspec's answer to JSON nested deeper than the stack allows
        raise EventDecodeError("not a valid spruce event: JSON nested too deeply") from None


def is_valid_job_id(job_id: str) -> bool:
    """Whether `job_id` fits the allowed alphabet and length (all of it: `$` alone lets a
    trailing newline through)."""
    return _JOB_ID_RE.fullmatch(job_id) is not None


def check_job_id(job_id: str) -> str:
    """Return `job_id` unchanged, or raise UsageError naming the rule it breaks."""
    if not is_valid_job_id(job_id):
        raise UsageError(f"invalid job id {job_id!r}: use 1-64 characters from [A-Za-z0-9._-]")
    return job_id
