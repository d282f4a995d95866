"""The HTTP API and WebSocket endpoints of SPEC §7: read jobs from the log, start and cancel them.

Malformed ids and cursors are answered 400 (HTTP) or closed 4400 (WebSocket), never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from spruce.errors import CursorReset, JobExistsError, UsageError
from spruce.events import event_to_dict, is_valid_job_id
from spruce.server.bridge import CloseCode, EventBusWebSocketBridge
from spruce.server.metrics import render_metrics
from spruce.store.base import READ_LIMIT, EventLog

_MAX_AFTER: Final = 2**63 - 1
_CURSOR_RE: Final = re.compile(r"[0-9A-Za-z._:-]{0,64}")
_MAX_JOBS: Final = 1000


class JobControl(Protocol):
    """What the API needs of a job runner (spruce.jobs.JobRunner)."""

    async def start(self, project: str, *, workflow: str = ...) -> str:
        """Start a job; its id once its first event is stored."""
        ...

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job this process runs; False if it does not run it."""
        ...

    def running(self) -> list[str]:
        """Ids of the jobs this process runs now."""
        ...


class StartRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The body of POST /api/jobs."""

    project: str
    workflow: str = "standard_quality"


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """A JSON error body: {"error": message, ...}."""
    return JSONResponse({"error": message, **extra}, status_code=status)


def parse_after(raw: str | None) -> int | None:
    """A job cursor: a non-negative integer in ASCII digits (default 0); None when malformed
    ("²".isdigit() holds, yet int() refuses it)."""
    if raw is None or raw == "":
        return 0
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > _MAX_AFTER:
        return None
    return int(raw)


class Api:
    """The route handlers, bound to one process's log, bridge and runner."""

    def __init__(
        self,
        log: EventLog,
        bridge: EventBusWebSocketBridge,
        runner: JobControl | None,
        *,
        roots: Sequence[Path],
        metrics: Any,
    ) -> None:
        self.log = log
        self.bridge = bridge
        self.runner = runner
        self.roots = tuple(roots)
        self.metrics = metrics
        self.summaries: Any = None  # spruce.insights_cache.SummaryCache, opened when first asked

    def routes(self) -> list[BaseRoute]:
        """Every HTTP and WebSocket route of the API."""
        return [
            Route("/healthz", self.healthz),
            Route("/metrics", self.prometheus),
            Route("/api/jobs", self.list_jobs, methods=["GET"]),
            Route("/api/jobs", self.start_job, methods=["POST"]),
            Route("/api/jobs/{job_id}", self.get_job, methods=["GET"]),
            Route("/api/jobs/{job_id}/events", self.get_events, methods=["GET"]),
            Route("/api/jobs/{job_id}/cancel", self.cancel_job, methods=["POST"]),
            Route("/api/stats", self.stats, methods=["GET"]),
            WebSocketRoute("/ws/progress/{job_id}", self.job_socket),
            WebSocketRoute("/ws/progress", self.firehose_socket),
        ]

    # reads ---------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        await self.log.head()  # proves the store answers
        return JSONResponse({"status": "ok"})

    async def prometheus(self, request: Request) -> Response:
        text = await render_metrics(
            self.bridge.bus, self.log, self.metrics, self.bridge.stats(), self.runner
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def list_jobs(self, request: Request) -> Response:
        limit = parse_after(request.query_params.get("limit")) or 100
        head = await self.log.head()  # before the list: a firehose from here misses nothing
        records = await self.log.list_jobs(limit=min(limit, _MAX_JOBS))
        return JSONResponse({"jobs": [msgspec.to_builtins(r) for r in records], "cursor": head})

    async def get_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if not is_valid_job_id(job_id):
            return _bad_job_id(job_id)
        if await self.log.get_job(job_id) is None:
            return error(404, f"no job {job_id!r}")
        from spruce.report.result import ResultBuilder

        builder = ResultBuilder(job_id)  # folded page by page: no list of the whole job
        while page := await self.log.read(job_id, after=builder.last_seq):
            for event in page:
                builder.add(event)
        return JSONResponse(builder.result())

    async def stats(self, request: Request) -> Response:
        from spruce.insights import DEFAULT_JOBS, MAX_JOBS, collect_stats

        project = request.query_params.get("project") or None
        if project is not None and not project.startswith("/"):
            return error(400, "invalid project: expected an absolute path")
        raw = request.query_params.get("jobs")
        jobs = parse_after(raw) if raw else DEFAULT_JOBS
        if not jobs:
            return error(400, "invalid jobs: expected a positive integer")
        cache = self._summaries()
        doc = await collect_stats(self.log, project=project, jobs=min(jobs, MAX_JOBS), cache=cache)
        return JSONResponse(doc)

    def _summaries(self) -> Any:
        """The per-job summary cache (opened on the first stats request)."""
        if self.summaries is None:
            from spruce.insights_cache import SummaryCache, default_path

            self.summaries = SummaryCache(default_path())
        return self.summaries

    async def get_events(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if not is_valid_job_id(job_id):
            return _bad_job_id(job_id)
        after = parse_after(request.query_params.get("after"))
        limit = parse_after(request.query_params.get("limit")) or READ_LIMIT
        if after is None:
            return error(400, "invalid after: expected a non-negative integer")
        if await self.log.get_job(job_id) is None:
            return error(404, f"no job {job_id!r}")
        try:
            events = await self.log.read(job_id, after=after, limit=min(limit, READ_LIMIT))
        except CursorReset as exc:
            return error(410, str(exc), earliest=exc.earliest)
        next_cursor = events[-1].seq if events else after
        return JSONResponse(
            {"events": [event_to_dict(e) for e in events], "next_cursor": next_cursor}
        )

    # writes --------------------------------------------------------------------------------

    async def start_job(self, request: Request) -> Response:
        if self.runner is None:
            return error(503, "this server does not start jobs")
        try:
            body = msgspec.json.decode(await request.body(), type=StartRequest)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return error(400, f"invalid body: {exc}")
        from spruce.jobs import ProjectNotAllowedError, RunnerBusyError

        try:  # the runner checks the project against its roots
            job_id = await self.runner.start(body.project, workflow=body.workflow)
        except ProjectNotAllowedError as exc:
            return error(403, str(exc))
        except JobExistsError as exc:
            return error(409, str(exc))
        except RunnerBusyError as exc:
            response = error(429, str(exc))
            response.headers["Retry-After"] = "5"
            return response
        except UsageError as exc:
            return error(400, str(exc))
        return JSONResponse({"job_id": job_id, "url": f"/ws/progress/{job_id}"}, status_code=202)

    async def cancel_job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if not is_valid_job_id(job_id):
            return _bad_job_id(job_id)
        record = await self.log.get_job(job_id)
        if record is None:
            return error(404, f"no job {job_id!r}")
        if record.status != "running":
            return error(409, f"job {job_id!r} already ended ({record.status})")
        if self.runner is None or not await self.runner.cancel(job_id):
            return error(
                409,
                f"job {job_id!r} is not run by this server; stop it where it runs "
                "(Ctrl-C in its terminal)",
            )
        return JSONResponse({"job_id": job_id, "cancelled": True})

    # sockets -------------------------------------------------------------------------------

    async def job_socket(self, ws: WebSocket) -> None:
        job_id = ws.path_params["job_id"]
        after = parse_after(ws.query_params.get("after"))
        await ws.accept()
        if not is_valid_job_id(job_id) or after is None:
            await ws.close(CloseCode.BAD_REQUEST, "malformed job id or cursor")
            return
        await self.bridge.serve_job(ws, job_id, after=after)

    async def firehose_socket(self, ws: WebSocket) -> None:
        after = ws.query_params.get("after")
        await ws.accept()
        if after is not None and not _CURSOR_RE.fullmatch(after):
            await ws.close(CloseCode.BAD_REQUEST, "malformed cursor")
            return
        await self.bridge.serve_firehose(ws, after=after or None)


def _bad_job_id(job_id: str) -> Response:
    return error(400, f"invalid job id {job_id[:80]!r}: use 1-64 characters from [A-Za-z0-9._-]")
