"""`spruce mcp`: serve spruce's MCP tools on stdio for an AI coding agent.

stdout carries the protocol alone; logs go to stderr.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from spruce.jobs import JobRunner

_STOP_TIMEOUT = 30.0


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `spruce mcp`."""
    parser = commands.add_parser(
        "mcp",
        help="serve the MCP tools on stdio (for AI coding agents)",
        description=(
            "Serve spruce's MCP tools on stdio: agents start workflows, follow their progress "
            "and read structured results."
        ),
    )
    parser.add_argument(
        "--store", metavar="URL", help="event log URL (default: $SPRUCE_STORE, else SQLite)"
    )
    parser.add_argument(
        "--root",
        metavar="DIR",
        action="append",
        dest="roots",
        help="allow projects under DIR (repeatable; default: the working directory)",
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Serve until the client closes stdin; jobs still running then are cancelled."""
    from pathlib import Path

    import anyio

    from spruce.errors import UsageError

    roots = [Path(root).expanduser().resolve() for root in args.roots or ["."]]
    for root in roots:
        if not root.is_dir():
            raise UsageError(f"--root {str(root)!r} is not a directory")
    anyio.run(_serve, args.store, roots)
    return 0


async def _serve(store_url: str | None, roots: list[Path]) -> None:
    import signal

    import anyio

    from spruce.container import open_services
    from spruce.jobs import JobRunner
    from spruce.mcp import build_server

    async with open_services(
        store_url=store_url, follow_other_processes=True, end_orphans_every=10.0
    ) as services:
        runner = JobRunner(services, roots=roots)
        server = build_server(services, runner, roots=roots)
        # Held open to the end, so that a SIGTERM during the cleanup cannot cut it short.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
            try:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(_stop_on_signal, signals, runner)
                    await server.run_stdio_async()  # until the client closes stdin
                    tasks.cancel_scope.cancel()
            finally:
                # Jobs run in process groups of their own: nothing else would stop them.
                with anyio.CancelScope(shield=True), anyio.move_on_after(_STOP_TIMEOUT):
                    await runner.aclose()


async def _stop_on_signal(signals: AsyncIterator[int], runner: JobRunner) -> None:
    """Hosts stop their MCP servers with SIGTERM: cancel the jobs, then leave at once.

    The SDK reads stdin in a worker thread that nothing can interrupt while stdin stays open, so
    the process cannot wind down by itself; the jobs' end events are stored by then.
    """
    import os

    import anyio

    async for _ in signals:
        with anyio.move_on_after(_STOP_TIMEOUT):
            await runner.aclose()
        os._exit(0)
