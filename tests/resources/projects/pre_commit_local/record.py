#!/usr/bin/env python3
"""Append `HOOK FILE...` to $RECORD_LOG; fail when a file holds the marker."""

import os
import sys

MARKER = "B" + "AD"
hook, files = sys.argv[1], sys.argv[2:]
with open(os.environ["RECORD_LOG"], "a") as log:
    log.write(" ".join([hook, *sorted(files)]) + "\n")
sys.exit(1 if any(MARKER in open(name).read() for name in files) else 0)
