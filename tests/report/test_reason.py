"""A hook's reason in one readable line, whatever the tool printed."""

from __future__ import annotations

import pytest

from spruce.report.reason import readable_reason

TRACEBACK = """Traceback (most recent call last):
  File "/x/bin/tool", line 8, in <module>
    sys.exit(main())
ModuleNotFoundError: No module named 'tomli'
"""

MYPY_JSON_LINES = (
    '{"file": "a.py", "line": 1, "message": "Expected a parameter", "code": "syntax"}\n'
    '{"file": "a.py", "line": 1, "message": "Expected `)`, found newline", "code": "syntax"}\n'
)


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        (None, ""),
        ("", ""),
        ("command not found: frob", "command not found: frob"),
        ("  first line\nsecond line\n", "first line"),
        (TRACEBACK, "ModuleNotFoundError: No module named 'tomli'"),
        ('{"message": "bad config", "code": 2}', "bad config"),
        (
            '[{"filename": "a.py", "message": "E902 No such file"}, {"message": "stop"}]',
            "a.py: E902 No such file; stop",
        ),
        ('warning: odd\n{"error": "cannot parse pyproject.toml"}', "cannot parse pyproject.toml"),
        ('{"results": [], "count": 0}', '{"results": [], "count": 0}'),
        ("x" * 400, "x" * 299 + "…"),
        (MYPY_JSON_LINES, "a.py:1: Expected a parameter; a.py:1: Expected `)`, found newline"),
    ],
)
def test_reasons_read_as_one_line(reason: object, said: str) -> None:
    assert readable_reason(reason) == said
