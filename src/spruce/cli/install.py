"""`spruce install` and `spruce uninstall`: a git hook that runs spruce before a commit or push."""

from __future__ import annotations

import argparse
import sys

HOOK_TYPES = ("pre-commit", "pre-push")


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `spruce install` and `spruce uninstall`."""
    for name, handler, what in (
        ("install", install, "write a git hook that runs spruce (an existing hook keeps running)"),
        ("uninstall", uninstall, "remove spruce's git hook and restore the one it kept"),
    ):
        parser = commands.add_parser(name, help=what, description=what[0].upper() + what[1:] + ".")
        parser.add_argument(
            "path", nargs="?", default=".", metavar="PATH", help="project directory (default: .)"
        )
        parser.add_argument(
            "--hook-type",
            choices=HOOK_TYPES,
            default="pre-commit",
            help="pre-commit runs `spruce run --staged`; pre-push `--changed @{upstream}`",
        )
        parser.set_defaults(handler=handler)


def install(args: argparse.Namespace) -> int:
    """Write the hook."""
    from spruce import githooks
    from spruce.jobs import resolve_project

    for line in githooks.install(resolve_project(args.path, ()), args.hook_type):
        print(f"spruce: {line}", file=sys.stderr)
    return 0


def uninstall(args: argparse.Namespace) -> int:
    """Remove the hook."""
    from spruce import githooks
    from spruce.jobs import resolve_project

    for line in githooks.uninstall(resolve_project(args.path, ()), args.hook_type):
        print(f"spruce: {line}", file=sys.stderr)
    return 0
