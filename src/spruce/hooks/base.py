"""What every hook shares: findings, results, the context a hook runs in, and the Hook protocol."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

import msgspec

from spruce.config import Config
from spruce.workflow.definitions import HookSpec
from spruce.workflow.files import FileSet
from spruce.workflow.toolenv import ToolEnv

if TYPE_CHECKING:
    from spruce.workflow.selection import SelectionSettings

Severity = Literal["error", "warning", "info"]
HookStatus = Literal["passed", "failed", "fixed", "skipped", "error", "timeout"]
OUTPUT_TAIL_BYTES: Final = 8192  # how much of a tool's output a hook result keeps
# Findings kept per hook (in its result, its end event and the cache); the rest are counted.
DEFAULT_MAX_FINDINGS: Final = 10_000
_MAX_LONGREPR: Final = 4096


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One problem a hook found, normalised: project-relative posix path, 1-based line/column."""

    path: str
    line: int
    column: int
    code: str
    message: str
    severity: Severity
    tool: str


Outcome = Literal["passed", "failed", "skipped", "error", "xfailed", "xpassed"]


class TestCase(msgspec.Struct, frozen=True, kw_only=True):
    """One test's result, as pytest reported it.

    `line` is where a failure was raised in the project (else the test's `def`); `longrepr` is
    pytest's short traceback of a failure, bounded; `when` is `collect` for a module that could
    not be collected or was skipped whole (not a test: counted, but not in the total).
    """

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    duration: float
    path: str
    line: int | None
    message: str | None
    longrepr: str | None = None
    when: str = "call"


def count_outcomes(cases: Sequence[TestCase]) -> dict[str, int]:
    """The tests phase's end counts, as pytest counts them; a module that could not be
    collected is an error and one skipped whole is a skip, but neither is in `total`."""
    counts = dict.fromkeys(("passed", "failed", "skipped", "errors", "xfailed", "xpassed"), 0)
    modules = collection_errors = 0
    for case in cases:
        counts["errors" if case.outcome == "error" else case.outcome] += 1
        modules += case.when == "collect"
        collection_errors += case.when == "collect" and case.outcome == "error"
    counts["total"] = len(cases) - modules
    counts["collection_errors"] = collection_errors
    return counts


def bounded_longrepr(text: str) -> str:
    """A traceback cut to its last few KB, where the failure is."""
    if len(text) <= _MAX_LONGREPR:
        return text
    return "…" + text[-_MAX_LONGREPR:]


class TestSelection(msgspec.Struct, frozen=True, kw_only=True):
    """What test selection ran and what it carried from earlier runs."""

    __test__ = False

    selected: int  # tests run this time
    carried: int  # tests whose earlier outcome stands
    carried_from: str | None  # the job most carried outcomes come from
    carried_outcomes: dict[str, int] = {}  # outcome -> count among the carried
    summary: str = ""  # "412 of 2,459 tests run; 2,047 carried from job k3x9"
    reason: str | None = None  # why the whole suite ran, when it did


class HookResult(msgspec.Struct, frozen=True, kw_only=True):
    """How one hook ended; `passed`/`failed` results may be stored in the result cache."""

    status: HookStatus
    exit_code: int | None = None
    findings: tuple[Finding, ...] = ()
    reason: str | None = None
    changed_files: tuple[str, ...] = ()
    test_cases: tuple[TestCase, ...] = ()
    cached: bool = False
    duration: float = 0.0
    # File-local hooks: files the tool looked at this run, and files answered from the cache.
    files_checked: int | None = None
    files_cached: int | None = None
    selection: TestSelection | None = None  # pytest with test selection (spruce.selection)
    output_tail: str = ""  # the end of what the tool printed (stdout, then stderr), bounded
    # how many findings the tool reported, when `findings` holds fewer (see `keep_findings`)
    reported: int | None = None
    workers: int | None = None  # pytest: how many processes ran the tests

    @property
    def findings_total(self) -> int:
        """Every finding the tool reported, also those not kept."""
        return len(self.findings) if self.reported is None else self.reported


def keep_findings(result: HookResult, limit: int) -> HookResult:
    """The result with at most `limit` findings kept, the others counted in `findings_total`."""
    if len(result.findings) <= limit:
        return result
    return msgspec.structs.replace(
        result, findings=result.findings[:limit], reported=result.findings_total
    )


TestCaseSink = Callable[[TestCase, int | None], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class HookContext:
    """What a hook may use: the project, its files and config, the tool environments."""

    project: Path
    files: FileSet
    config: Config
    env: ToolEnv  # the project's interpreter (its .venv, else spruce's)
    own: ToolEnv  # spruce's interpreter
    scratch: Path  # a private directory for this job, removed at its end
    # Where tools keep incremental state for this project (mypy's cache); never in the project.
    state: Path | None = None
    on_test_case: TestCaseSink | None = None
    selection: SelectionSettings | None = None  # test selection's settings (None: run all)
    # CPUs `test_workers = "auto"` may take (None: every usable one); less when checks run beside
    test_cpus: int | None = None


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """A hook ready to run: its inputs and what identifies a run for the result cache."""

    inputs: tuple[str, ...]
    identity: tuple[str, ...]  # tool, version, interpreter, argv: everything but file contents
    cacheable: bool = True
    per_file: bool = False  # file-local: results may be kept and merged file by file
    # > 0: the inputs may be cut into chunks of at least this many bytes, run on idle CPU slots
    # and merged (file-local tools only; the cache key stays that of the whole input)
    chunk_bytes: int = 0


class Hook(Protocol):
    """One check or fixer."""

    @property
    def spec(self) -> HookSpec:
        """The hook's id, phase and tool."""
        ...

    def prepare(self, ctx: HookContext) -> Prepared | str:
        """The inputs and cache identity, or the reason the hook cannot run (then skipped)."""
        ...

    async def execute(self, ctx: HookContext, prepared: Prepared, *, timeout: float) -> HookResult:
        """Run the hook (a fixer writes its changes); never raises for findings."""
        ...


def select_inputs(
    ctx: HookContext,
    hook_id: str,
    *,
    suffixes: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[str, ...]:
    """The files a hook looks at: its suffixes, limited by the hook's configured paths/exclude."""
    settings = ctx.config.hook(hook_id)
    return tuple(
        ctx.files.select(
            suffixes=suffixes,
            include=settings.paths,
            exclude=(*exclude, *settings.exclude),
        )
    )


def relative(project: Path, path: str) -> str:
    """A tool's path (absolute or relative to the project) as a project-relative posix path."""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.resolve().relative_to(project).as_posix()
        except ValueError:
            return candidate.as_posix()
    return candidate.as_posix().removeprefix("./")


def bounded_tail(text: str, *, limit: int = OUTPUT_TAIL_BYTES) -> str:
    """The last `limit` bytes of `text` in UTF-8, cut at a character boundary."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[-limit:].decode("utf-8", "ignore")
