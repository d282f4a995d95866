"""`spruce run` (being built)."""

from __future__ import annotations

import argparse


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `spruce run`."""
    parser = commands.add_parser("run", help="(being built)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError
