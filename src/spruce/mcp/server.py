"""The MCP server over one process's services: tools to start, follow, read and cancel jobs.

Every answer is built from the event log, so a job started by an agent, by `spruce run` in a
terminal or through the HTTP API looks the same to everyone.  Failures an agent can act on come
back as tool errors of one sentence, never as tracebacks.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Protocol

import anyio
import msgspec
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from spruce import __version__
from spruce.container import Services
from spruce.errors import CursorReset, SpruceError, UnknownJobError
from spruce.events import Event
from spruce.mcp.digest import FindingsIndex, FindingsPage, summarize
from spruce.mcp.progress import JobProgress
from spruce.mcp.results import (
    CancelOutcome,
    EventsPage,
    HookInfo,
    HookList,
    JobList,
    JobStarted,
    object_schema,
    to_json_ready,
)
from spruce.report.result import RESULT_SCHEMA, ResultBuilder
from spruce.store.base import READ_LIMIT, JobRecord
from spruce.workflow.definitions import WORKFLOWS

_log: Final = logging.getLogger("spruce.mcp")

MAX_WAIT_S: Final = 50.0  # most MCP hosts give up on a request after 60 s
_POLL_S: Final = 1.0  # wake-ups can be missed across processes; never sleep longer than this


class Runner(Protocol):
    """What the MCP server needs from the process's job runner (`spruce.jobs.JobRunner`)."""

    async def start(
        self,
        project: str,
        *,
        workflow: str = ...,
        fix: bool = ...,
        no_cache: bool = ...,
        fail_fast: bool = ...,
    ) -> str:
        """Start a job; UsageError with one clear sentence when it cannot start."""
        ...

    async def cancel(self, job_id: str) -> bool:
        """End a job this runner runs with WORKFLOW_CANCELLED; False if it does not run it."""
        ...


JobIdArg = Annotated[str, Field(description="The job id, as run_workflow or list_jobs gave it.")]
ProjectArg = Annotated[
    str,
    Field(description="Absolute path of the project directory; it must lie under a server root."),
]
WorkflowArg = Annotated[
    str,
    Field(
        description="The workflow to run: "
        + "; ".join(f"{name} ({wf.description})" for name, wf in WORKFLOWS.items()),
        # Advertised for agents to choose from; the runner answers anything else in one sentence.
        json_schema_extra={"enum": list(WORKFLOWS)},
    ),
]
WaitArg = Annotated[
    float,
    Field(ge=0, le=MAX_WAIT_S, description="Seconds to wait at most (0 to 50)."),
]
AfterArg = Annotated[
    int,
    Field(ge=0, description="Return events with seq greater than this (0: from the start)."),
]
LimitArg = Annotated[int, Field(ge=1, le=READ_LIMIT, description="The most items to return.")]
HooksArg = Annotated[
    list[str] | None, Field(description="Run only these hook ids (see list_hooks).")
]
SkipArg = Annotated[list[str] | None, Field(description="Skip these hook ids (see list_hooks).")]
FilesArg = Annotated[
    list[str] | None,
    Field(description="File-local hooks check only these files (relative to the project)."),
]
ChangedArg = Annotated[
    str | None,
    Field(
        description="File-local hooks check only files differing from this git ref (e.g. "
        "HEAD), plus untracked ones; mypy, vulture and pytest still judge the whole project."
    ),
]
FixArg = Annotated[bool, Field(description="Apply the safe fixes (code cleaning) first.")]
NoCacheArg = Annotated[bool, Field(description="Run every hook, none answered from the cache.")]
FailFastArg = Annotated[bool, Field(description="Stop scheduling hooks after the first failure.")]
DetailArg = Annotated[
    Literal["summary", "full"],
    Field(
        description='"summary" (default): statuses, counts, the first findings of each hook and '
        'the failed test cases; "full": the whole result document with every stored finding '
        "(get_findings pages through them instead)."
    ),
]
HookArg = Annotated[str | None, Field(description="Only this hook's findings (its id).")]
FindingsAfterArg = Annotated[
    int, Field(ge=0, description="Return findings with index greater than this (0: the first).")
]

_READ_ONLY: Final = ToolAnnotations(read_only_hint=True, open_world_hint=False)


class _Folder(Protocol):
    """What takes in a job's events in seq order (the result document, the findings index)."""

    @property
    def last_seq(self) -> int:
        """The last seq taken in."""
        ...

    def add(self, event: Event) -> None:
        """Take in one event."""
        ...


class SpruceTools:
    """The tools, bound to one process's services and job runner."""

    def __init__(self, services: Services, runner: Runner, *, roots: Sequence[Path]) -> None:
        self._log = services.log
        self._runner = runner
        self._roots = tuple(roots)

    async def run_workflow(
        self,
        project: ProjectArg,
        workflow: WorkflowArg = "standard_quality",
        fix: FixArg = False,
        no_cache: NoCacheArg = False,
        fail_fast: FailFastArg = False,
        hooks: HooksArg = None,
        skip: SkipArg = None,
        files: FilesArg = None,
        changed: ChangedArg = None,
    ) -> CallToolResult:
        """Start a quality workflow on a project and return its job id at once.

        Follow the job with wait_for_job (its result document, once it ends) or get_job_events
        (every event, by cursor).
        """
        options = {"fix": fix, "no_cache": no_cache, "fail_fast": fail_fast}
        choice = {"hooks": hooks or (), "skip": skip or (), "files": files, "changed": changed}
        return await _answer(self._start(project, workflow, options, choice))

    async def get_job(self, job_id: JobIdArg, detail: DetailArg = "summary") -> CallToolResult:
        """The job's result document: status (running until it ends), phases, hooks with their
        findings (file, line, code, message) and findings_total, test counts and the failed
        test cases (nodeid, path, failing line, message).

        By default a summary: each hook's first findings; page through all with get_findings.
        """
        return await _document_answer(self._result_document(job_id), detail)

    async def wait_for_job(
        self,
        job_id: JobIdArg,
        ctx: Context[Any, Any],
        timeout_s: WaitArg = 30.0,
        detail: DetailArg = "summary",
    ) -> CallToolResult:
        """Wait until the job ends or timeout_s passes, sending progress notifications (hooks
        and tests done of planned) meanwhile; then return its result document (a summary by
        default, as get_job).

        A status of "running" means the wait timed out: call again.
        """
        return await _document_answer(self._wait(job_id, timeout_s, ctx), detail)

    async def get_findings(
        self,
        job_id: JobIdArg,
        hook: HookArg = None,
        after: FindingsAfterArg = 0,
        limit: LimitArg = 200,
    ) -> CallToolResult:
        """Every stored finding of a job (or of one hook), in the order the hooks ended, a page
        at a time: pass next_cursor as `after` until findings come back empty.

        `reported` counts what the tools reported, `stored` what can be paged; they differ only
        for a hook over the project's max_findings bound.
        """
        return await _answer(self._findings_page(job_id, hook, after, limit))

    async def get_job_events(
        self,
        job_id: JobIdArg,
        after: AfterArg = 0,
        wait_s: WaitArg = 0.0,
        limit: LimitArg = 200,
    ) -> CallToolResult:
        """The job's events with seq greater than `after`, oldest first; when there are none
        yet, wait up to wait_s seconds for new ones.

        Pass next_cursor as `after` on the next call to read every event exactly once; stop when
        status is no longer "running" and events come back empty.
        """
        return await _answer(self._events_page(job_id, after, wait_s, limit))

    async def list_jobs(self, limit: LimitArg = 20) -> CallToolResult:
        """The newest jobs in the event log (from any agent, terminal or server), newest first."""
        return await _answer(self._jobs(limit))

    async def cancel_job(self, job_id: JobIdArg) -> CallToolResult:
        """Cancel a running job: its processes are stopped and it ends with status "cancelled"."""
        return await _answer(self._cancel(job_id))

    async def list_hooks(self, project: ProjectArg | None = None) -> CallToolResult:
        """Every hook the workflows can run: phase, tool, description, whether it is enabled
        (for the project, if given) and whether its tool is installed."""
        return await _answer(self._hooks(project))

    async def job_resource(self, job_id: str) -> str:
        """The job's result document as JSON."""
        try:
            document = await self._result_document(job_id)
        except SpruceError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return msgspec.json.encode(document).decode()

    # the work behind the tools ---------------------------------------------------------------

    async def _start(
        self, project: str, workflow: str, options: dict[str, Any], choice: dict[str, Any]
    ) -> dict[str, Any]:
        chosen: dict[str, Any] = dict(options)  # a runner that takes no choices is asked for none
        if any(choice.values()):
            from functools import partial

            from spruce.jobs import resolve_project
            from spruce.workflow.scope import gate_for

            path = resolve_project(project, self._roots)
            chosen["gate"] = await anyio.to_thread.run_sync(partial(gate_for, path, **choice))
        job_id = await self._runner.start(project, workflow=workflow, **chosen)
        return to_json_ready(JobStarted(job_id=job_id))

    async def _findings_page(
        self, job_id: str, hook: str | None, after: int, limit: int
    ) -> dict[str, Any]:
        record = await self._record(job_id)
        index = FindingsIndex()
        await self._fold(job_id, index)
        return to_json_ready(index.page(hook=hook, after=after, limit=limit, status=record.status))

    async def _result_document(self, job_id: str) -> dict[str, Any]:
        await self._record(job_id)
        builder = ResultBuilder(job_id)
        await self._fold(job_id, builder)
        return builder.result()

    async def _wait(self, job_id: str, timeout_s: float, ctx: Context[Any, Any]) -> dict[str, Any]:
        await self._record(job_id)
        deadline = anyio.current_time() + min(max(timeout_s, 0.0), MAX_WAIT_S)
        builder = ResultBuilder(job_id)
        progress = JobProgress()
        reported = -1
        while True:
            seen = self._log.version
            await self._fold(job_id, builder, progress)
            if progress.done > reported:
                reported = progress.done
                await ctx.report_progress(progress.done, progress.total, progress.message)
            remaining = deadline - anyio.current_time()
            if builder.ended or remaining <= 0:
                return builder.result()
            await self._log.wait(seen, min(remaining, _POLL_S))

    async def _events_page(
        self, job_id: str, after: int, wait_s: float, limit: int
    ) -> dict[str, Any]:
        record = await self._record(job_id)
        deadline = anyio.current_time() + min(max(wait_s, 0.0), MAX_WAIT_S)
        while True:
            seen = self._log.version
            try:
                events = await self._log.read(job_id, after=after, limit=limit)
            except CursorReset as exc:
                raise SpruceError(
                    f"events of job {job_id!r} after seq {after} were removed by retention: "
                    f"read on with after={int(exc.earliest) - 1}"
                ) from None
            remaining = deadline - anyio.current_time()
            if events or record.status != "running" or remaining <= 0:
                break
            await self._log.wait(seen, min(remaining, _POLL_S))
            record = await self._record(job_id)
        if events and events[-1].is_end:
            record = await self._record(job_id)
        page = EventsPage(
            events=events,
            next_cursor=events[-1].seq if events else after,
            status=record.status,
        )
        return to_json_ready(page)

    async def _jobs(self, limit: int) -> dict[str, Any]:
        return to_json_ready(JobList(jobs=await self._log.list_jobs(limit=limit)))

    async def _cancel(self, job_id: str) -> dict[str, Any]:
        record = await self._record(job_id)
        if record.status != "running":
            return to_json_ready(
                CancelOutcome(job_id=job_id, cancelled=False, status=record.status)
            )
        if not await self._runner.cancel(job_id):
            record = await self._record(job_id)
            if record.status != "running":  # it ended while we asked
                return to_json_ready(
                    CancelOutcome(job_id=job_id, cancelled=False, status=record.status)
                )
            raise SpruceError(
                f"job {job_id!r} is run by another process (such as a `spruce run` in a "
                "terminal), so it can only be stopped there"
            )
        record = await self._record(job_id)
        # A job that ended by itself meanwhile was not cancelled, whatever the runner did.
        outcome = CancelOutcome(
            job_id=job_id, cancelled=record.status == "cancelled", status=record.status
        )
        return to_json_ready(outcome)

    async def _hooks(self, project: str | None) -> dict[str, Any]:
        from spruce.jobs import resolve_project
        from spruce.workflow.definitions import list_hooks

        path = resolve_project(project, self._roots) if project is not None else None
        rows = await anyio.to_thread.run_sync(list_hooks, path)
        return to_json_ready(HookList(hooks=msgspec.convert(rows, list[HookInfo])))

    async def _record(self, job_id: str) -> JobRecord:
        record = await self._log.get_job(job_id)
        if record is None:
            raise UnknownJobError(job_id)
        return record

    async def _fold(
        self, job_id: str, builder: _Folder, progress: JobProgress | None = None
    ) -> None:
        """Fold the job's stored events after those already folded, a page at a time."""
        while True:
            try:
                page = await self._log.read(job_id, after=builder.last_seq)
            except CursorReset as exc:
                raise SpruceError(
                    f"the start of job {job_id!r} was removed by retention; get_job_events "
                    f"still reads it from after={int(exc.earliest) - 1}"
                ) from None
            for event in page:
                builder.add(event)
                if progress is not None:
                    progress.update(event)
            if len(page) < READ_LIMIT:
                return


async def _answer(work: Awaitable[dict[str, Any]]) -> CallToolResult:
    """The tool result for `work`: its structured value, or a one-sentence error an agent reads."""
    try:
        value = await work
    except UnknownJobError as exc:
        return _error(f"no job {exc.job_id!r} in the event log; list_jobs shows the known jobs")
    except SpruceError as exc:
        return _error(str(exc))
    text = msgspec.json.encode(value).decode()
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=value)


async def _document_answer(work: Awaitable[dict[str, Any]], detail: str) -> CallToolResult:
    """A result document, summarised unless `detail` is "full"."""

    async def shaped() -> dict[str, Any]:
        document = await work
        return document if detail == "full" else summarize(document)

    return await _answer(shaped())


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def _instructions(roots: Sequence[Path]) -> str:
    where = ", ".join(str(root) for root in roots) or "the server's working directory"
    return (
        "spruce runs a Python project's quality workflow (format, lint, type check, security "
        "scan, tests). Start one with run_workflow (projects under: "
        f"{where}); then call wait_for_job until its status is no longer running, or page "
        "through get_job_events with its cursor. Findings come with file, line and code."
    )


class SpruceMCPServer(MCPServer[Any]):
    """MCPServer whose argument errors read as one sentence instead of pydantic's report, and
    which refuses arguments a tool does not take (naming them) instead of ignoring them."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            known = tool.parameters.get("properties", {})
            unknown = sorted(set(arguments) - set(known))
            if unknown:
                raise ToolError(
                    f"unknown argument{'s' * (len(unknown) > 1)} for {name}: "
                    f"{', '.join(unknown)} (it takes: {', '.join(known) or 'none'})"
                )
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError):
                raise
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg'].lower()}"
                for error in cause.errors()
            )
            raise ToolError(f"invalid arguments for {name}: {problems}") from cause


def build_server(
    services: Services, runner: Runner, *, roots: Sequence[Path] = ()
) -> SpruceMCPServer:
    """The spruce MCP server over `services`, starting and cancelling jobs through `runner`."""
    tools = SpruceTools(services, runner, roots=roots)
    document = dict(RESULT_SCHEMA)
    specs: list[tuple[Any, dict[str, Any], ToolAnnotations]] = [
        (
            tools.run_workflow,
            object_schema(JobStarted),
            ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
        ),
        (tools.get_job, document, _READ_ONLY),
        (tools.wait_for_job, document, _READ_ONLY),
        (tools.get_job_events, object_schema(EventsPage), _READ_ONLY),
        (tools.get_findings, object_schema(FindingsPage), _READ_ONLY),
        (tools.list_jobs, object_schema(JobList), _READ_ONLY),
        (
            tools.cancel_job,
            object_schema(CancelOutcome),
            ToolAnnotations(
                read_only_hint=False,
                destructive_hint=True,
                idempotent_hint=True,
                open_world_hint=False,
            ),
        ),
        (tools.list_hooks, object_schema(HookList), _READ_ONLY),
    ]
    server = SpruceMCPServer(
        "spruce",
        version=__version__,
        instructions=_instructions(roots),
        tools=[_tool(fn, schema, annotations) for fn, schema, annotations in specs],
        log_level="WARNING",
    )
    server.resource(
        "spruce://jobs/{job_id}",
        name="job",
        description="A job's result document (the same as get_job), as JSON.",
        mime_type="application/json",
    )(tools.job_resource)
    return server


def _tool(fn: Any, schema: dict[str, Any], annotations: ToolAnnotations) -> Tool:
    """A tool whose structured result the function builds itself, published with `schema`."""
    tool = Tool.from_function(
        fn, description=inspect.getdoc(fn), annotations=annotations, structured_output=False
    )
    tool.parameters["additionalProperties"] = False  # unknown arguments are refused
    # The SDK reads the published schema from the metadata on every listing.
    tool.fn_metadata.output_schema = schema
    return tool
