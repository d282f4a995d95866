"""`spruce mcp`: serve spruce's MCP tools on stdio for an AI coding agent.

stdout carries the protocol alone; logs go to stderr.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


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
    from spruce.container import open_services
    from spruce.jobs import JobRunner
    from spruce.mcp import build_server

    async with open_services(store_url=store_url, follow_other_processes=True) as services:
        runner = JobRunner(services, roots=roots)
        try:
            await build_server(services, runner, roots=roots).run_stdio_async()
        finally:
            await runner.aclose()
