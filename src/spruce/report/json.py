"""`--format json`: the result document itself, indented, one document per job."""

from __future__ import annotations

from typing import Any

import msgspec


def render_json(result: dict[str, Any]) -> str:
    """The document as indented JSON, ending with a newline."""
    return msgspec.json.format(msgspec.json.encode(result), indent=2).decode() + "\n"
