"""`--format github`: GitHub Actions workflow commands that annotate each finding in the PR.

Escaping follows `@actions/core`: the message escapes `%`, CR and LF; property values also
escape `:` and `,`, which would otherwise end the value.
"""

from __future__ import annotations

from typing import Any, Final

from spruce.report.text import closing_line, findings_total

_LEVELS: Final = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    """Escape a command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a command property's value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int | None) -> str:
    """One workflow command line: `::name k=v,k=v::message`."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def render_github(result: dict[str, Any]) -> str:
    """An annotation per finding, a notice per hook whose list was cut (with the true count),
    an error per hook that crashed or timed out, then the closing line as plain log text."""
    lines: list[str] = []
    for phase in result["phases"]:
        for hook in phase["hooks"]:
            for finding in hook["findings"]:
                title = f"{finding['code']} ({finding['tool'] or hook['id']})"
                lines.append(
                    command(
                        _LEVELS.get(finding["severity"], "warning"),
                        finding["message"],
                        file=finding["path"] or None,
                        line=finding["line"],
                        col=finding["column"],
                        title=title,
                    )
                )
            hidden = findings_total(hook) - len(hook["findings"])
            if hidden > 0:
                lines.append(
                    command(
                        "notice",
                        f"{hook['id']} reported {findings_total(hook)} findings; "
                        f"{len(hook['findings'])} are annotated here, {hidden} more are not",
                        title=f"spruce: {hook['id']} findings truncated",
                    )
                )
            if hook["status"] in ("error", "timeout"):
                reason = hook["reason"] or f"{hook['id']} ended with status {hook['status']}"
                lines.append(
                    command("error", reason, title=f"spruce: {hook['id']} {hook['status']}")
                )
    lines.append(closing_line(result))
    return "\n".join(lines) + "\n"
