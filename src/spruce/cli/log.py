"""`spruce jobs`, `spruce events`, `spruce watch`, `spruce gc`: read and tidy the event log."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from spruce.events import Event
    from spruce.store import EventLog, JobRecord


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the log-reading commands."""
    jobs = commands.add_parser("jobs", help="list the jobs in the event log, newest first")
    jobs.add_argument("--json", action="store_true", help="one JSON document")
    jobs.add_argument("--limit", type=_positive, default=50, help="at most N jobs (default 50)")
    _add_store(jobs)
    jobs.set_defaults(handler=_jobs)

    events = commands.add_parser("events", help="print a job's stored events")
    events.add_argument("job", help="the job id")
    events.add_argument("--after", type=_cursor, default=0, help="only events with seq > N")
    events.add_argument("--json", action="store_true", help="one JSON event per line")
    _add_store(events)
    events.set_defaults(handler=_events)

    watch = commands.add_parser("watch", help="follow a job live until it ends")
    watch.add_argument("job", help="the job id")
    watch.add_argument("--after", type=_cursor, default=0, help="start after seq N")
    watch.add_argument("--json", action="store_true", help="one JSON event per line")
    _add_store(watch)
    watch.set_defaults(handler=_watch)

    gc = commands.add_parser("gc", help="remove old jobs from the event log")
    gc.add_argument("--keep-days", type=float, default=30.0, help="keep jobs this recent")
    gc.add_argument("--keep-jobs", type=_positive, default=1000, help="keep the newest N jobs")
    gc.add_argument(
        "--max-events-per-job", type=_positive, default=None, help="trim longer jobs' oldest events"
    )
    _add_store(gc)
    gc.set_defaults(handler=_gc)


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar="URL", help="event log URL (default: $SPRUCE_STORE or the SQLite file)"
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _cursor(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError("must be a seq number (0 or more)")
    return int(text)


def _jobs(args: argparse.Namespace) -> int:
    import asyncio

    async def go(log: EventLog) -> int:
        import msgspec

        await _end_orphans(args.store)
        records = await log.list_jobs(limit=args.limit)
        if args.json:
            print(msgspec.json.encode(records).decode())
            return 0
        print(f"{'JOB':<14} {'STATUS':<9} {'WORKFLOW':<20} {'STARTED':<19} {'TIME':>8}  PROJECT")
        for job in records:
            print(_job_line(job))
        return 0

    return asyncio.run(_with_log(args.store, go))


def _job_line(job: JobRecord) -> str:
    import time

    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.started_at))
    took = f"{job.ended_at - job.started_at:.2f}s" if job.ended_at else "…"
    return (
        f"{job.job_id:<14} {job.status:<9} {job.workflow or '-':<20} {started:<19} {took:>8}"
        f"  {job.project or '-'}"
    )


def _events(args: argparse.Namespace) -> int:
    import asyncio

    from spruce.errors import UnknownJobError

    async def go(log: EventLog) -> int:
        if await log.get_job(args.job) is None:
            raise UnknownJobError(args.job)
        after = args.after
        while batch := await log.read(args.job, after=after):
            for event in batch:
                _print_event(event, as_json=args.json)
            after = batch[-1].seq
        return 0

    return asyncio.run(_with_log(args.store, go))


def _watch(args: argparse.Namespace) -> int:
    import asyncio

    from spruce.store import follow_job

    async def go(log: EventLog) -> int:
        last: Event | None = None
        orphan_check = asyncio.create_task(_end_if_orphaned(args.store, args.job))
        try:
            async for event in follow_job(log, args.job, after=args.after, poll=1.0):
                _print_event(event, as_json=args.json)
                last = event
        finally:
            orphan_check.cancel()
        return _exit_code_of(last)

    return asyncio.run(_with_log(args.store, go))


async def _end_orphans(store: str | None) -> None:
    """End the jobs whose runner on this host died, so the list shows no phantom runs."""
    from spruce.container import open_services
    from spruce.orphans import end_orphaned_jobs

    async with open_services(store_url=store) as services:
        await end_orphaned_jobs(services.bus)


async def _end_if_orphaned(store: str | None, job_id: str, *, every: float = 2.0) -> None:
    """While watching, end the job for its runner if that process died (kill -9, a crash)."""
    import asyncio

    from spruce.container import open_services
    from spruce.errors import StoreError
    from spruce.orphans import end_orphan

    async with open_services(store_url=store) as services:
        while True:
            await asyncio.sleep(every)
            try:
                job = await services.log.get_job(job_id)
                if job is None or job.status != "running":
                    return
                gone = await services.judge.is_gone(job)
            except StoreError:
                continue  # the judge forgot what it saw; it looks again once the log answers
            if gone:
                await end_orphan(services.bus, job)
                return


def _gc(args: argparse.Namespace) -> int:
    import asyncio

    from spruce.store import Retention

    retention = Retention(
        keep_days=args.keep_days,
        keep_jobs=args.keep_jobs,
        max_events_per_job=args.max_events_per_job,
    )

    async def go(log: EventLog) -> int:
        report = await log.gc(retention)
        print(f"removed {report.jobs_removed} jobs, {report.events_removed} events")
        return 0

    return asyncio.run(_with_log(args.store, go))


async def _with_log(url: str | None, body: Callable[[EventLog], Awaitable[int]]) -> int:
    """Open the log the options name, run `body(log)`, close it."""
    from spruce.store import open_store, resolve_store_url

    log = open_store(resolve_store_url(url))
    await log.open()
    try:
        return await body(log)
    finally:
        await log.aclose()


def _print_event(event: Event, *, as_json: bool) -> None:
    if as_json:
        from spruce.events import encode_event

        print(encode_event(event).decode(), flush=True)
        return
    import time

    clock = time.strftime("%H:%M:%S", time.localtime(event.timestamp))
    data = event.data
    detail = " ".join(
        f"{key}={data[key]}"
        for key in ("status", "duration", "findings", "outcome", "reason")
        if data.get(key) is not None
    )
    print(
        f"#{event.seq:<5} {clock} {event.event.value:<32} {event.step_id or '-'}  {detail}",
        flush=True,
    )
    # The tool's own words explain an error, a timeout or a failure without findings; with
    # findings they only repeat them (`--json` has every tail).
    tail = data.get("output_tail")
    unexplained = data.get("status") in ("error", "timeout") or (
        data.get("status") == "failed" and not data.get("findings")
    )
    if unexplained and isinstance(tail, str) and tail.strip():
        print("       output:", *("       | " + line for line in tail.splitlines()), sep="\n")


def _exit_code_of(last: Event | None) -> int:
    """The exit code the watched job maps to: its end event's exit_code, else by status."""
    if last is None:
        return 0
    code = last.data.get("exit_code")
    if isinstance(code, int):
        return code
    return {"passed": 0, "cancelled": 130}.get(str(last.data.get("status")), 1)
