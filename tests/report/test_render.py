"""render(): the one entry point for every format, and the JSON format itself."""

from __future__ import annotations

import json

import pytest

from spruce.errors import UsageError
from spruce.report import FORMATS, render
from spruce.report.result import build_result
from tests.report.streams import events


def test_every_format_renders_a_finished_and_a_running_job() -> None:
    stream = events()
    for doc in (build_result(stream), build_result(stream[:20], test_cases=True)):
        for fmt in FORMATS:
            text = render(fmt, doc)
            assert text.endswith("\n")
            assert "k3x9" in text or fmt in ("sarif", "github", "junit")


def test_json_is_the_document_itself_indented() -> None:
    doc = build_result(events())
    text = render("json", doc)
    assert json.loads(text) == doc
    assert text.startswith('{\n  "schema": "spruce.result/1",\n  "job_id": "k3x9",')


def test_an_unknown_format_is_a_usage_error_naming_the_choices() -> None:
    with pytest.raises(UsageError, match="use one of text, json, sarif, junit, github"):
        render("xml", build_result(events()))
