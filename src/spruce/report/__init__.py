"""Reports of a job: the result document (`result.py`) and its renderings, one module each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from spruce.errors import UsageError
from spruce.report.github import render_github
from spruce.report.json import render_json
from spruce.report.junit import render_junit
from spruce.report.sarif import render_sarif
from spruce.report.text import render_text

__all__ = ["FORMATS", "render"]

_RENDERERS: Final[dict[str, Callable[[dict[str, Any]], str]]] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "junit": render_junit,
    "github": render_github,
}
FORMATS: Final = tuple(_RENDERERS)


def render(fmt: str, result: dict[str, Any]) -> str:
    """The result document in format `fmt` (one of FORMATS), ending with a newline.

    JUnit lists every test only when the document was built with `test_cases=True`.
    """
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise UsageError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    return renderer(result)
