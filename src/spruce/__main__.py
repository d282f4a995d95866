"""`python -m spruce` runs the command line."""

from __future__ import annotations

from spruce.cli import run_main

run_main()
