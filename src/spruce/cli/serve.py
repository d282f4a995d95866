"""`spruce serve` (being built)."""

from __future__ import annotations

import argparse


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `spruce serve`."""
    parser = commands.add_parser("serve", help="(being built)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise NotImplementedError
