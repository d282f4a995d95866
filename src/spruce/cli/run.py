"""`spruce run`: run a workflow on a project, show its progress, print its report.

Progress and the job-id lines go to stderr; the report (the text summary or a --format
document) goes to stdout or --output.  Exit 0 passed, 1 findings, 2 usage/config (or an event
log unavailable past its retry window), 3 events kept in a spill file, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from spruce.container import Services
    from spruce.events import Event
    from spruce.workflow.engine import RunOptions, WorkflowEngine

FORMATS = ("text", "json", "sarif", "junit", "github")
WORKFLOW_NAMES = ("standard_quality", "fast", "comprehensive", "tests")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `spruce run`."""
    parser = commands.add_parser(
        "run",
        help="run a project's quality workflow and report the result",
        description="Run a workflow (default standard_quality) on PATH (default: .).",
    )
    parser.add_argument("path", nargs="?", default=".", metavar="PATH", help="project directory")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--workflow", metavar="W", help=f"one of: {', '.join(WORKFLOW_NAMES)}")
    which.add_argument(
        "--fast", dest="workflow", action="store_const", const="fast", help="the fast hooks only"
    )
    which.add_argument(
        "--comp",
        dest="workflow",
        action="store_const",
        const="comprehensive",
        help="the comprehensive hooks only",
    )
    which.add_argument(
        "--skip-hooks", dest="workflow", action="store_const", const="tests", help="tests only"
    )
    parser.add_argument("--fix", action="store_true", help="apply safe fixes (code_cleaning)")
    parser.add_argument("--no-cache", action="store_true", help="run every hook, ignore the cache")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    parser.add_argument("--job-id", metavar="ID", help="choose the job id ([A-Za-z0-9._-], 1-64)")
    parser.add_argument("--store", metavar="URL", help="event log URL (default: SPRUCE_STORE)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="report format")
    parser.add_argument("--output", metavar="FILE", help="write the report here, not stdout")
    _add_choice_arguments(parser)
    parser.set_defaults(handler=main)


def _add_choice_arguments(parser: argparse.ArgumentParser) -> None:
    """The scope, hook choice and output volume of a run (SPEC §10)."""
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--files", nargs="+", metavar="PATH", help="file-local hooks check only these files"
    )
    scope.add_argument(
        "--changed",
        nargs="?",
        const="HEAD",
        metavar="REF",
        help="only files that differ from REF (default HEAD), plus untracked ones",
    )
    scope.add_argument(
        "--staged",
        action="store_true",
        help="check the staged content of the staged files (unstaged edits set aside)",
    )
    parser.add_argument(
        "--hook", action="append", default=[], metavar="ID", help="run only this hook (repeat)"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="ID",
        help="skip this hook (repeat; also SPRUCE_SKIP=id,id)",
    )
    parser.add_argument("--all-tests", action="store_true", help="run the whole test suite")
    parser.add_argument(
        "--test-workers",
        type=_test_workers,
        metavar="N|auto",
        help="processes the test suite runs in (default: [tool.spruce] test_workers, else 1)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only the closing summary line"
    )
    parser.add_argument(
        "--watch", action="store_true", help="run again on every saved change, until Ctrl-C"
    )
    parser.add_argument(
        "--pre-commit-config",
        action="store_true",
        help="run the hooks of the project's .pre-commit-config.yaml",
    )


def _test_workers(value: str) -> int | str:
    if value == "auto":
        return value
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f'expected an integer >= 1 or "auto", got {value!r}')


def main(args: argparse.Namespace) -> int:
    """Run the job (or, with --watch, one job per change) and return its exit code."""
    import asyncio

    from spruce.jobs import resolve_project
    from spruce.workflow.staged import recover_leftovers, staged_content

    if args.watch:
        from spruce.cli.watch import watch

        return watch(args)
    project = resolve_project(args.path, ())
    for note in recover_leftovers(project):
        print(f"spruce: {note}", file=sys.stderr)
    if not args.staged:
        return asyncio.run(run_job(args))
    with staged_content(project):
        return asyncio.run(run_job(args))


async def run_job(
    args: argparse.Namespace, *, started: Callable[[WorkflowEngine], None] | None = None
) -> int:
    """Validate the arguments, run the job with live progress, write the report.

    Without `started`, SIGINT and SIGTERM cancel the job; with it, the caller is handed the
    engine (to cancel it) and owns the signals."""
    from rich.console import Console

    from spruce.container import ProgressView, open_services
    from spruce.errors import JobExistsError, UsageError
    from spruce.events import check_job_id
    from spruce.jobs import new_job_id, resolve_project
    from spruce.workflow.definitions import WORKFLOWS
    from spruce.workflow.engine import EXIT_CONFIG, WorkflowEngine

    name = args.workflow or "standard_quality"
    workflow = WORKFLOWS.get(name)
    if workflow is None:
        raise UsageError(f"unknown workflow {name!r}: choose one of {', '.join(WORKFLOWS)}")
    project = resolve_project(args.path, ())
    job_id = check_job_id(args.job_id) if args.job_id else new_job_id()
    options = run_options(args, project)
    console = Console(file=sys.stderr)
    view = ProgressView(console, live=console.is_terminal, job_id=job_id)
    async with open_services(
        store_url=args.store, progress=None if args.quiet else view
    ) as services:
        if await services.log.get_job(job_id) is not None:
            raise JobExistsError(job_id)
        engine = WorkflowEngine(
            services.bus, job_id=job_id, project=project, workflow=workflow, options=options
        )
        if not args.quiet:
            hint = watch_hint(services.store_url, job_id, args.store)
            _announce(job_id, name, project, options, hint)
        monitor = services.progress
        with _cancel_when_log_fails(services, engine):
            if started is not None:
                started(engine)
                outcome = await engine.run()
            else:
                with _signals_cancel(engine):
                    outcome = await engine.run()
        await services.bus.flush()
        if monitor is not None:
            # flush() hands events to subscribers; let the view show the end event too.
            await monitor.wait_until_ended(timeout=2.0)
            monitor.stop_monitoring()
        events = await _job_events(services, job_id)
    spilled = _spilled(services)
    if outcome.exit_code == EXIT_CONFIG and outcome.reason:
        print(f"spruce: error: {outcome.reason}", file=sys.stderr)
    # The live view already drew every hook on this terminal: end with the findings and the
    # closing line rather than the same table again.
    shown_live = view.live and args.format == "text" and not args.output and sys.stdout.isatty()
    # events is None when the log could not be read back: the spill message says where they are.
    if events is not None and args.quiet and args.format == "text" and not args.output:
        from spruce.report.result import build_result
        from spruce.report.text import closing_line

        print(closing_line(build_result(events)))
    elif events is not None and shown_live and monitor is not None:
        sys.stdout.write(monitor.summary().rstrip("\n") + "\n")
        sys.stdout.flush()
    elif events is not None:
        _write_report(args, events)
    if spilled is not None:
        from spruce.cli import EXIT_EVENTS_SPILLED

        print(spilled, file=sys.stderr)
        return EXIT_EVENTS_SPILLED
    return outcome.exit_code


def run_options(args: argparse.Namespace, project: Path) -> RunOptions:
    """The RunOptions the arguments ask for; UsageError for an unknown hook id or bad scope."""
    import os
    from pathlib import Path

    from spruce.workflow.engine import RunOptions
    from spruce.workflow.scope import gate_for

    gate = gate_for(
        project,
        hooks=args.hook,
        skip=args.skip,
        env_skip=os.environ.get("SPRUCE_SKIP"),
        files=args.files,
        changed=args.changed,
        staged=args.staged,
        pre_commit=args.pre_commit_config,
        cwd=Path.cwd(),
    )
    return RunOptions(
        fix=args.fix,
        no_cache=args.no_cache,
        fail_fast=args.fail_fast,
        all_tests=args.all_tests,
        gate=gate,
        pre_commit=args.pre_commit_config,
        test_workers=args.test_workers,
    )


def _announce(job_id: str, name: str, project: Path, options: RunOptions, hint: str) -> None:
    err = sys.stderr
    print(f"spruce: job {job_id} ({name}) on {project}", file=err)
    print(f"spruce: {hint}", file=err)
    gate = options.gate
    if gate is not None and gate.scope is not None:
        count = len(gate.scope)
        if count == 0:
            print(f"spruce: nothing in scope ({gate.scope_label}): a quick pass", file=err)
        else:
            print(f"spruce: {count} file(s) in scope ({gate.scope_label})", file=err)


def watch_hint(store_url: str, job_id: str, store_option: str | None) -> str:
    """Where to watch the job: the dashboard of a `spruce serve` on this store, if one runs
    here, and the `spruce watch` command."""
    from spruce.advert import find_dashboard, job_link

    command = f"spruce watch {job_id}" + (f" --store {store_option}" if store_option else "")
    dashboard = find_dashboard(store_url)
    if dashboard is None:
        return f"watch it with `{command}`"
    return f"watch it at {job_link(dashboard, job_id)} or with `{command}`"


@contextlib.contextmanager
def _cancel_when_log_fails(services: Services, engine: WorkflowEngine) -> Iterator[None]:
    """Stop the job once the event log refused its events past the retry window."""
    import asyncio

    async def watch() -> None:
        await services.bus.log_unavailable.wait()
        engine.cancel("the event log is unavailable")

    task = asyncio.create_task(watch(), name="spruce-run-log-watch")
    try:
        yield
    finally:
        task.cancel()


def _spilled(services: Services) -> str | None:
    """What to tell the user when some of the job's events wait in a spill file."""
    path = services.log.spill_path or services.bus.spill_path
    if path is None:
        return None
    return (
        f"spruce: some events of this job did not reach the event log; they are kept in {path}."
        f" Load them with: spruce import {path} --store {services.store_url}"
    )


@contextlib.contextmanager
def _signals_cancel(engine: WorkflowEngine) -> Iterator[None]:
    """SIGINT and SIGTERM cancel the job (it still ends with its WORKFLOW_CANCELLED event)."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    handled = (signal.SIGINT, signal.SIGTERM)
    for signum in handled:
        loop.add_signal_handler(
            signum, engine.cancel, f"interrupted by {signal.Signals(signum).name}"
        )
    try:
        yield
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


async def _job_events(services: Services, job_id: str) -> list[Event] | None:
    """The job's stored events; None (and a word why) when the log cannot be read now."""
    from spruce.errors import StoreError

    events: list[Event] = []
    try:
        while page := await services.log.read(job_id, after=events[-1].seq if events else 0):
            events.extend(page)
    except StoreError as exc:
        print(f"spruce: no report: the event log cannot be read ({exc})", file=sys.stderr)
        return None
    return events


def _write_report(args: argparse.Namespace, events: list[Event]) -> None:
    from spruce.report import render
    from spruce.report.result import build_result

    text = render(args.format, build_result(events, test_cases=args.format == "junit"))
    if args.output:
        from pathlib import Path

        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
