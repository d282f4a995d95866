"""The result document (`spruce.result/1`): a job's events folded into one summary.

Every report format, the server's `/api/jobs/{id}` and MCP's `get_job` start from this document;
it is rebuilt from the event stream alone, so it is the same wherever the stream is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal, get_args

import msgspec

from spruce.events import Event, WorkflowEvent

SCHEMA_ID: Final = "spruce.result/1"
MAX_TEST_CASES: Final = 10_000  # cases kept (each list); counts stay exact past this

JobStatus = Literal["running", "passed", "failed", "error", "cancelled"]
PhaseStatus = Literal["running", "passed", "failed", "skipped", "error", "timeout", "cancelled"]
HookStatus = Literal["running", "passed", "failed", "fixed", "skipped", "error", "timeout"]
Severity = Literal["error", "warning", "info"]
Outcome = Literal["passed", "failed", "skipped", "error", "xfailed", "xpassed"]


class Finding(msgspec.Struct, kw_only=True):
    """One problem at a place in the project (path relative to its root, 1-based line/column)."""

    path: str
    line: int | None
    column: int | None
    code: str
    message: str
    severity: Severity
    tool: str


class HookResult(msgspec.Struct, kw_only=True):
    """One hook of a phase; `running` while it has started and not ended."""

    id: str
    status: HookStatus
    duration: float
    exit_code: int | None
    cached: bool
    reason: str | None
    findings: list[Finding]
    output_tail: str = ""
    findings_total: int  # every finding the tool reported
    findings_truncated: bool  # `findings` holds fewer than `findings_total`
    queued: float = 0.0  # seconds it waited for a CPU slot; `duration` is its running time
    files_checked: int | msgspec.UnsetType = msgspec.UNSET  # file-local hooks only
    files_cached: int | msgspec.UnsetType = msgspec.UNSET
    workers: int | msgspec.UnsetType = msgspec.UNSET  # pytest: processes that ran the tests


class PhaseResult(msgspec.Struct, kw_only=True):
    """One phase that ran, runs, or was skipped, with its hooks in the order they started."""

    name: str
    status: PhaseStatus
    duration: float
    hooks: list[HookResult]


class TestCaseResult(msgspec.Struct, kw_only=True):
    """One test: in `cases` when it failed or errored, in `all_cases` (built with
    `test_cases=True`) whatever its outcome. `line` is where the failure was raised."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    duration: float
    path: str
    line: int | None
    message: str | None
    longrepr: str | None
    when: str


class TestCounts(msgspec.Struct, kw_only=True):
    """Test outcomes so far (exact from the test phase's end event once it arrives)."""

    __test__ = False

    passed: int
    failed: int
    skipped: int
    errors: int
    total: int
    xfailed: int
    xpassed: int
    collection_errors: int  # modules that could not be collected (in `errors`, not `total`)
    cases: list[TestCaseResult]
    all_cases: list[TestCaseResult] | msgspec.UnsetType = msgspec.UNSET
    # Test selection (absent with --no-cache): run this time, carried from earlier runs.
    selected: int | msgspec.UnsetType = msgspec.UNSET
    carried: int | msgspec.UnsetType = msgspec.UNSET
    carried_from: str | msgspec.UnsetType | None = msgspec.UNSET
    selection: str | msgspec.UnsetType = msgspec.UNSET  # "412 of 2,459 tests run; …"


class Result(msgspec.Struct, kw_only=True):
    """The `spruce.result/1` document of one job (SPEC §6)."""

    schema: Literal["spruce.result/1"]
    job_id: str
    workflow: str
    project: str
    status: JobStatus
    duration: float
    phases: list[PhaseResult]
    tests: TestCounts


def _inline_schema() -> dict[str, Any]:
    # MCP wants an object schema at the top, not msgspec's {"$ref": ...} wrapper.
    defs: dict[str, Any] = dict(msgspec.json.schema(Result)["$defs"])
    top = defs.pop("Result")
    return {**top, "$defs": defs}


RESULT_SCHEMA: Final[dict[str, Any]] = _inline_schema()

_PHASE_STARTS: Final = {
    WorkflowEvent.CONFIG_PHASE_STARTED: "config",
    WorkflowEvent.FAST_HOOKS_STARTED: "fast_hooks",
    WorkflowEvent.CODE_CLEANING_STARTED: "code_cleaning",
    WorkflowEvent.COMPREHENSIVE_HOOKS_STARTED: "comprehensive_hooks",
    WorkflowEvent.TEST_PHASE_STARTED: "tests",
}
_PHASE_ENDS: Final = {
    WorkflowEvent.CONFIG_PHASE_COMPLETED: ("config", "passed"),
    WorkflowEvent.CONFIG_PHASE_FAILED: ("config", "failed"),
    WorkflowEvent.FAST_HOOKS_COMPLETED: ("fast_hooks", "passed"),
    WorkflowEvent.FAST_HOOKS_FAILED: ("fast_hooks", "failed"),
    WorkflowEvent.CODE_CLEANING_COMPLETED: ("code_cleaning", "passed"),
    WorkflowEvent.CODE_CLEANING_FAILED: ("code_cleaning", "failed"),
    WorkflowEvent.COMPREHENSIVE_HOOKS_COMPLETED: ("comprehensive_hooks", "passed"),
    WorkflowEvent.COMPREHENSIVE_HOOKS_FAILED: ("comprehensive_hooks", "failed"),
    WorkflowEvent.TEST_PHASE_COMPLETED: ("tests", "passed"),
    WorkflowEvent.TEST_PHASE_FAILED: ("tests", "failed"),
}
_HOOK_ENDS: Final = {
    WorkflowEvent.HOOK_COMPLETED: "passed",
    WorkflowEvent.HOOK_FAILED: "failed",
    WorkflowEvent.HOOK_SKIPPED: "skipped",
}
_JOB_ENDS: Final = {
    WorkflowEvent.WORKFLOW_COMPLETED: "passed",
    WorkflowEvent.WORKFLOW_FAILED: "failed",
    WorkflowEvent.WORKFLOW_CANCELLED: "cancelled",
}
_PHASE_STATUSES: Final = frozenset(get_args(PhaseStatus))
_HOOK_STATUSES: Final = frozenset(get_args(HookStatus))
_JOB_STATUSES: Final = frozenset(get_args(JobStatus))
_SEVERITIES: Final = frozenset(get_args(Severity))
_OUTCOMES: Final = frozenset(get_args(Outcome))
_BASIC_COUNTS: Final = ("passed", "failed", "skipped", "errors")
_COUNTS: Final = (*_BASIC_COUNTS, "xfailed", "xpassed", "collection_errors")


class _Hook:
    __slots__ = (
        "cached",
        "duration",
        "exit_code",
        "file_counts",
        "findings",
        "findings_total",
        "id",
        "output_tail",
        "queued",
        "reason",
        "started",
        "status",
    )

    def __init__(self, hook_id: str, started: float) -> None:
        self.id = hook_id
        self.started = started
        self.status = "running"
        self.duration: float | None = None
        self.exit_code: int | None = None
        self.cached = False
        self.reason: str | None = None
        self.findings: list[dict[str, Any]] = []
        # files_checked/files_cached of file-local hooks, workers of pytest
        self.file_counts: dict[str, int] = {}
        self.output_tail = ""
        self.findings_total = 0
        self.queued = 0.0


class _Phase:
    __slots__ = ("duration", "hooks", "name", "started", "status")

    def __init__(self, name: str, started: float) -> None:
        self.name = name
        self.started = started
        self.status = "running"
        self.duration: float | None = None
        self.hooks: dict[str, _Hook] = {}


class ResultBuilder:
    """Folds one job's events, in seq order, into the result document; `add` is O(1).

    Events of other jobs, and events at or below the last seq folded, are ignored, so a
    replay that overlaps the live stream is harmless.
    """

    def __init__(self, job_id: str | None = None) -> None:
        self.job_id = job_id
        self.last_seq = 0
        self._workflow = ""
        self._project = ""
        self._status = "running"
        self._duration: float | None = None
        self._first_ts: float | None = None
        self._last_ts = 0.0
        self._phases: dict[str, _Phase] = {}
        self._tests: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self._tests_total: int | None = None
        self._tests_final = False
        self._cases: list[dict[str, Any]] = []
        self._selection: dict[str, Any] = {}  # selected/carried/carried_from/selection
        self._failures: list[dict[str, Any]] = []
        self._modules = 0  # reports of whole modules (collection errors, skips): not tests

    @property
    def ended(self) -> bool:
        """Whether the job's end event has been folded in."""
        return self._status != "running"

    def add(self, event: Event) -> None:
        """Fold one event into the document."""
        if self.job_id is None:
            self.job_id = event.job_id
        elif event.job_id != self.job_id:
            return
        if event.seq <= self.last_seq:
            return
        self.last_seq = event.seq
        if self._first_ts is None:
            self._first_ts = event.timestamp
        self._last_ts = max(self._last_ts, event.timestamp)
        kind, data = event.event, event.data
        if kind is WorkflowEvent.WORKFLOW_SESSION_INITIALIZING:
            self._workflow = str(data.get("workflow") or self._workflow)
            self._project = str(data.get("project") or self._project)
        elif kind in _PHASE_STARTS:
            self._phase(_PHASE_STARTS[kind], event.timestamp)
            if kind is WorkflowEvent.TEST_PHASE_STARTED:
                self._tests_total = _int_or_none(data.get("total"))
        elif kind in _PHASE_ENDS:
            name, fallback = _PHASE_ENDS[kind]
            self._end_phase(name, fallback, event)
        elif kind is WorkflowEvent.HOOK_STARTED:
            self._hook(event).started = event.timestamp
        elif kind in _HOOK_ENDS:
            self._end_hook(_HOOK_ENDS[kind], event)
        elif kind is WorkflowEvent.TEST_CASE_COMPLETED:
            self._add_case(data)
        elif kind in _JOB_ENDS:
            self._end_job(_JOB_ENDS[kind], event)

    def result(self, *, test_cases: bool = False, now: float | None = None) -> dict[str, Any]:
        """The document as it stands; `tests.cases` lists the failed and erroring tests, and
        with `test_cases`, `tests.all_cases` lists each test.

        What still runs is timed up to the latest event, or up to `now` (Unix seconds) when
        given, for views that tick while nothing happens; an ended job ignores `now`.
        """
        if now is None or self.ended:
            now = self._last_ts
        tests: dict[str, Any] = dict(self._tests)
        # Until the phase's end event, the total is the collected count or the cases seen.
        ran = sum(self._tests[key] for key in _COUNTS if key != "collection_errors")
        tests["total"] = max(self._tests_total or 0, ran - self._modules)
        tests["cases"] = [dict(case) for case in self._failures]
        tests.update(self._selection)
        if test_cases:
            tests["all_cases"] = [dict(case) for case in self._cases]
        return {
            "schema": SCHEMA_ID,
            "job_id": self.job_id or "",
            "workflow": self._workflow,
            "project": self._project,
            "status": self._status,
            "duration": _duration(self._duration, self._first_ts, now),
            "phases": [_phase_dict(phase, now) for phase in _in_workflow_order(self._phases)],
            "tests": tests,
        }

    # folding ---------------------------------------------------------------------------------

    def _phase(self, name: str, timestamp: float) -> _Phase:
        phase = self._phases.get(name)
        if phase is None:
            phase = self._phases[name] = _Phase(name, timestamp)
        return phase

    def _end_phase(self, name: str, fallback: str, event: Event) -> None:
        data = event.data
        phase = self._phase(str(data.get("phase") or name), event.timestamp)
        phase.status = _pick(data.get("status"), _PHASE_STATUSES, fallback)
        phase.duration = _float_or_none(data.get("duration"))
        if name == "tests" and "passed" in data:
            for key in self._tests:
                # Older streams have no xfail counts: keep the ones the cases gave.
                if key in data or key in _BASIC_COUNTS:
                    self._tests[key] = _int_or_none(data.get(key)) or 0
            self._tests_total = _int_or_none(data.get("total"))
            self._tests_final = True
            self._selection = selection_fields(data)

    def _hook(self, event: Event) -> _Hook:
        data = event.data
        step = event.step_id or ""
        phase_name = str(data.get("phase") or step.partition("/")[0] or "unknown")
        hook_id = str(data.get("hook") or step.partition("/")[2] or "unknown")
        phase = self._phase(phase_name, event.timestamp)
        hook = phase.hooks.get(hook_id)
        if hook is None:
            hook = phase.hooks[hook_id] = _Hook(hook_id, event.timestamp)
        return hook

    def _end_hook(self, fallback: str, event: Event) -> None:
        data = event.data
        hook = self._hook(event)
        hook.status = _pick(data.get("status"), _HOOK_STATUSES - {"running"}, fallback)
        hook.duration = _float_or_none(data.get("duration"))
        hook.exit_code = _int_or_none(data.get("exit_code"))
        hook.cached = bool(data.get("cached", False))
        hook.queued = _float_or_none(data.get("queued")) or 0.0
        reason = data.get("reason")
        hook.reason = None if reason is None else str(reason)
        hook.file_counts = {
            name: count
            for name in ("files_checked", "files_cached", "workers")
            if (count := _int_or_none(data.get(name))) is not None
        }
        details = data.get("details")
        hook.findings = [_finding(d) for d in details if isinstance(d, dict)] if details else []
        hook.output_tail = str(data.get("output_tail") or "")
        total = _int_or_none(data.get("findings_total"))
        if total is None:
            total = _int_or_none(data.get("findings"))
        hook.findings_total = max(total or 0, len(hook.findings))

    def _add_case(self, data: dict[str, Any]) -> None:
        outcome = _pick(data.get("outcome"), _OUTCOMES, "error")
        when = str(data.get("when") or "call")
        if not self._tests_final:
            self._tests["errors" if outcome == "error" else outcome] += 1
            self._modules += when == "collect"
            self._tests["collection_errors"] += when == "collect" and outcome == "error"
            total = _int_or_none(data.get("total"))
            if total is not None:
                self._tests_total = total
        failed = outcome in ("failed", "error")
        if len(self._cases) >= MAX_TEST_CASES and not (
            failed and len(self._failures) < MAX_TEST_CASES
        ):
            return
        case = {
            "nodeid": str(data.get("nodeid", "")),
            "outcome": outcome,
            "duration": _float_or_none(data.get("duration")) or 0.0,
            "path": str(data.get("path") or ""),
            "line": _int_or_none(data.get("line")),
            "message": _str_or_none(data.get("message")),
            "longrepr": _str_or_none(data.get("longrepr")),
            "when": when,
        }
        if len(self._cases) < MAX_TEST_CASES:
            self._cases.append(case)
        if failed and len(self._failures) < MAX_TEST_CASES:
            self._failures.append(case)

    def _end_job(self, fallback: str, event: Event) -> None:
        data = event.data
        self._status = _pick(data.get("status"), _JOB_STATUSES - {"running"}, fallback)
        self._workflow = str(data.get("workflow") or self._workflow)
        self._duration = _float_or_none(data.get("duration"))
        # Whatever never reported an end was cut off by the job's end.
        cut = "cancelled" if self._status == "cancelled" else "error"
        for phase in self._phases.values():
            for hook in phase.hooks.values():
                if hook.status == "running":
                    hook.status = "error"
                    hook.reason = f"the job ended ({self._status}) before this hook finished"
                    hook.duration = max(0.0, event.timestamp - hook.started)
            if phase.status == "running":
                phase.status = cut
                phase.duration = max(0.0, event.timestamp - phase.started)


def build_result(events: Iterable[Event], *, test_cases: bool = False) -> dict[str, Any]:
    """The result document of the job whose events (seq order) are given; works mid-job."""
    builder = ResultBuilder()
    for event in events:
        builder.add(event)
    return builder.result(test_cases=test_cases)


# helpers ---------------------------------------------------------------------------------------


def _phase_dict(phase: _Phase, now: float) -> dict[str, Any]:
    return {
        "name": phase.name,
        "status": phase.status,
        "duration": _duration(phase.duration, phase.started, now),
        "hooks": [
            {
                "id": hook.id,
                "status": hook.status,
                "duration": _duration(hook.duration, hook.started, now),
                "exit_code": hook.exit_code,
                "cached": hook.cached,
                "reason": hook.reason,
                "findings": [dict(finding) for finding in hook.findings],
                "output_tail": hook.output_tail,
                "findings_total": hook.findings_total,
                "findings_truncated": len(hook.findings) < hook.findings_total,
                "queued": hook.queued,
                **hook.file_counts,
            }
            for hook in phase.hooks.values()
        ],
    }


def _in_workflow_order(phases: dict[str, _Phase]) -> list[_Phase]:
    """Phases in the workflow's order, not their events': the tests phase may start first."""
    rank = {name: index for index, name in enumerate(_PHASE_STARTS.values())}
    return sorted(phases.values(), key=lambda phase: rank.get(phase.name, len(rank)))


def _duration(reported: float | None, started: float | None, now: float) -> float:
    """The reported duration, else the time from the start to the latest event seen."""
    if reported is not None:
        return reported
    if started is None:
        return 0.0
    return round(max(0.0, now - started), 3)


def _finding(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": str(raw.get("path") or ""),
        "line": _int_or_none(raw.get("line")),
        "column": _int_or_none(raw.get("column")),
        "code": str(raw.get("code") or ""),
        "message": str(raw.get("message") or ""),
        "severity": _pick(raw.get("severity"), _SEVERITIES, "warning"),
        "tool": str(raw.get("tool") or ""),
    }


def _pick(value: object, allowed: frozenset[str], fallback: str) -> str:
    return value if isinstance(value, str) and value in allowed else fallback


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _float_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def selection_fields(data: dict[str, Any]) -> dict[str, Any]:
    """What test selection did, from the tests phase's end event (empty when it did not)."""
    if "selected" not in data:
        return {}
    carried_from = data.get("carried_from")
    return {
        "selected": _int_or_none(data.get("selected")) or 0,
        "carried": _int_or_none(data.get("carried")) or 0,
        "carried_from": None if carried_from is None else str(carried_from),
        "selection": str(data.get("selection") or ""),
    }
