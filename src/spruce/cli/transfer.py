"""`spruce import FILE`: load a spill file (events a store could not take) into an event log."""

from __future__ import annotations

import argparse


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `spruce import`."""
    parser = commands.add_parser(
        "import",
        help="append the events of a spill file to the event log, skipping those it has",
        description=(
            "Append the events of a JSON-lines spill file (written when Redis was unreachable)"
            " to the event log. Events the log already holds are skipped, so running it twice"
            " is safe."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the spill file (.jsonl)")
    parser.add_argument(
        "--store", metavar="URL", help="event log URL (default: $SPRUCE_STORE or the SQLite file)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Import the file; exit 0 when every event is in the log, 2 on a bad file or store."""
    import asyncio
    from pathlib import Path

    import msgspec

    from spruce.errors import UsageError
    from spruce.store import open_store, resolve_store_url
    from spruce.store.spill import ImportReport, import_spill

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no spill file at {path}")
    url = resolve_store_url(args.store)

    async def go() -> ImportReport:
        log = open_store(url)
        await log.open()
        try:
            return await import_spill(log, path)
        finally:
            await log.aclose()

    report = asyncio.run(go())
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        print(
            f"imported {report.imported} events of {report.jobs} job(s) from {path};"
            f" {report.skipped} were already stored"
        )
    return 0
