"""A hook's `reason` as one readable line: the message inside a tool's JSON, the error at the end
of a traceback, rather than the first line of whatever the tool printed."""

from __future__ import annotations

import json
from typing import Final

_MESSAGE_KEYS: Final = ("message", "msg", "error", "reason", "description", "detail")
_MAX_MESSAGES: Final = 3
_MAX_JSON_LINES: Final = 20  # trailing lines looked at for JSON lines
_MAX_LENGTH: Final = 300


def readable_reason(reason: object) -> str:
    """One line that says why, from a reason that may be JSON, a traceback or plain text."""
    if not reason:
        return ""
    text = str(reason).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    messages = _json_messages(text)
    if messages is None:  # JSON lines, maybe after some text: the messages of each
        found = [m for line in lines[-_MAX_JSON_LINES:] for m in _json_messages(line) or ()]
        messages = found[:_MAX_MESSAGES] or None
    if messages:
        line = "; ".join(dict.fromkeys(messages))
    elif any(line.startswith("Traceback (most recent call last)") for line in lines):
        line = lines[-1]  # the exception, not the frames above it
    else:
        line = lines[0]
    return line if len(line) <= _MAX_LENGTH else line[: _MAX_LENGTH - 1] + "…"


def _json_messages(text: str) -> list[str] | None:
    """The messages a JSON document holds; None if the text is not JSON."""
    if not text.startswith(("{", "[")):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    found: list[str] = []
    _collect(document, found, depth=0)
    return found or [_compact(document)]


def _collect(value: object, found: list[str], *, depth: int) -> None:
    if len(found) >= _MAX_MESSAGES or depth > 6:
        return
    if isinstance(value, dict):
        for key in _MESSAGE_KEYS:
            message = value.get(key)
            if isinstance(message, str) and message.strip():
                found.append(_located(value, message.strip().splitlines()[0]))
                return
        for item in value.values():
            _collect(item, found, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found, depth=depth + 1)


def _located(value: dict[str, object], message: str) -> str:
    """`path:line: message` when the object says where."""
    where = value.get("filename") or value.get("file") or value.get("path")
    if not isinstance(where, str) or not where:
        return message
    line = value.get("line") or value.get("line_number")
    return f"{where}:{line}: {message}" if isinstance(line, int) else f"{where}: {message}"


def _compact(document: object) -> str:
    """JSON without messages in it, on one line."""
    return json.dumps(document, separators=(", ", ": "))
