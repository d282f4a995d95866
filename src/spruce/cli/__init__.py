"""The `spruce` command line: parse, dispatch to one command module, map errors to exit codes.

Command modules import only argparse at the top so that `spruce --help` stays fast; each does
its real imports inside its `main`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Final, Protocol

from spruce import __version__

EXIT_OK: Final = 0
EXIT_FINDINGS: Final = 1
EXIT_USAGE: Final = 2
EXIT_EVENTS_SPILLED: Final = 3  # the run ended, but some events wait in a spill file for import
EXIT_INTERRUPTED: Final = 130
EXIT_BROKEN_PIPE: Final = 141  # 128 + SIGPIPE, what a shell reports for `spruce events J | head`

# command name -> module under spruce.cli that defines it
_COMMANDS: Final = {
    "run": "run",
    "serve": "serve",
    "mcp": "mcp",
    "jobs": "log",
    "events": "log",
    "watch": "log",
    "gc": "log",
    "import": "transfer",
    "install": "install",
    "uninstall": "install",
    "completion": "completion",
}


class CommandModule(Protocol):
    """What each spruce.cli.<module> provides."""

    def add_parsers(self, commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        """Add this module's commands; each sets `handler` as a default."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="spruce",
        description="Run a Python project's quality workflow and watch every step live.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"spruce {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in dict.fromkeys(_COMMANDS.values()):
        module: CommandModule = importlib.import_module(f"spruce.cli.{module_name}")
        module.add_parsers(commands)
    for command in commands.choices.values():
        # An abbreviation would run something else than was typed (`--skip` as `--skip-hooks`).
        command.allow_abbrev = False
        command.add_argument(
            "-v",
            "--verbose",
            dest="command_verbose",
            action="count",
            default=0,
            help="more log output",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code: 0 passed, 1 findings, 2 usage, 130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    import logging  # not at the top: `spruce --help` stays fast

    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose + args.command_verbose, 2),
        format="spruce: %(levelname)s: %(name)s: %(message)s",
    )
    from spruce.errors import SpruceError, UsageError

    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("spruce: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; point stdout at /dev/null so the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except UsageError as exc:
        print(f"spruce: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SpruceError as exc:
        print(f"spruce: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


def run_main() -> None:
    """Console-script entry point."""
    sys.exit(main())
