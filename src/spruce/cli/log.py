"""`spruce jobs`, `spruce events`, `spruce watch`, `spruce gc`: read the event log."""

from __future__ import annotations

import argparse


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the log-reading commands."""
