"""`--format sarif`: SARIF 2.1.0, one run per tool, for code-scanning uploads and IDE viewers.

Paths stay relative to the project, anchored at the `PROJECTROOT` base id, so the log reads
the same on any checkout of the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import msgspec

from spruce import __version__
from spruce.report.text import findings_total

SARIF_SCHEMA_URI: Final = "https://json.schemastore.org/sarif-2.1.0.json"
ROOT_ID: Final = "PROJECTROOT"
_LEVELS: Final = {"error": "error", "warning": "warning", "info": "note"}


def build_sarif(result: dict[str, Any]) -> dict[str, Any]:
    """The SARIF log of a result document, as a JSON-ready dict.

    A hook whose list was cut (`findings_truncated`) adds a warning notification to its tool's
    run saying how many the tool reported and how many are listed.
    """
    by_tool: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    cut: dict[str, list[dict[str, Any]]] = {}
    for phase in result["phases"]:
        for hook in phase["hooks"]:
            for finding in hook["findings"]:
                tool = finding["tool"] or hook["id"]
                by_tool.setdefault(tool, []).append((hook["id"], finding))
            if findings_total(hook) > len(hook["findings"]):
                tool = next((f["tool"] for f in hook["findings"] if f["tool"]), hook["id"])
                by_tool.setdefault(tool, [])
                cut.setdefault(tool, []).append(hook)
    runs = [_run(tool, findings, result) for tool, findings in by_tool.items()]
    for run in runs:
        hooks = cut.get(run["tool"]["driver"]["name"])
        if hooks:
            run["invocations"] = [_truncation_notice(hooks)]
    if not runs:
        # Code scanning needs a run to learn that earlier alerts are gone.
        runs = [_run("spruce", [], result)]
    return {"$schema": SARIF_SCHEMA_URI, "version": "2.1.0", "runs": runs}


def render_sarif(result: dict[str, Any]) -> str:
    """The SARIF log as indented JSON, ending with a newline."""
    return msgspec.json.format(msgspec.json.encode(build_sarif(result)), indent=2).decode() + "\n"


def _run(
    tool: str, findings: list[tuple[str, dict[str, Any]]], result: dict[str, Any]
) -> dict[str, Any]:
    rules: dict[str, int] = {}
    results = []
    for hook_id, finding in findings:
        rule_id = finding["code"] or tool
        index = rules.setdefault(rule_id, len(rules))
        results.append(_result(finding, rule_id, index, hook_id))
    driver: dict[str, Any] = {
        "name": tool,
        "rules": [{"id": rule_id} for rule_id in rules],
    }
    if tool == "spruce":
        driver["version"] = __version__
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        # A distinct id per tool keeps code scanning from merging two tools' alerts.
        "automationDetails": {"id": f"spruce/{tool}/"},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if result["project"]:
        run["originalUriBaseIds"] = {ROOT_ID: {"uri": _root_uri(result["project"])}}
    return run


def _truncation_notice(hooks: list[dict[str, Any]]) -> dict[str, Any]:
    """An invocation whose notifications say which hooks' results are only a part."""
    notes = [
        {
            "level": "warning",
            "descriptor": {"id": "spruce/findings-truncated"},
            "message": {
                "text": f"{hook['id']} reported {findings_total(hook)} findings; the first "
                f"{len(hook['findings'])} are listed as results, "
                f"{findings_total(hook) - len(hook['findings'])} more are not"
            },
            "properties": {
                "hook": hook["id"],
                "findingsTotal": findings_total(hook),
                "findingsListed": len(hook["findings"]),
            },
        }
        for hook in hooks
    ]
    return {"executionSuccessful": True, "toolExecutionNotifications": notes}


def _result(finding: dict[str, Any], rule_id: str, index: int, hook_id: str) -> dict[str, Any]:
    location: dict[str, Any] = {
        "artifactLocation": {"uri": quote(finding["path"] or ".", safe="/"), "uriBaseId": ROOT_ID}
    }
    line, column = finding["line"], finding["column"]
    if line is not None and line >= 1:
        region: dict[str, int] = {"startLine": line}
        if column is not None and column >= 1:
            region["startColumn"] = column
        location["region"] = region
    return {
        "ruleId": rule_id,
        "ruleIndex": index,
        "level": _LEVELS.get(finding["severity"], "warning"),
        "message": {"text": finding["message"] or rule_id},
        "locations": [{"physicalLocation": location}],
        "properties": {"hook": hook_id},
    }


def _root_uri(project: str) -> str:
    """The project directory as a `file:` URI ending in `/`, as SARIF requires of a base."""
    uri = Path(project).as_uri() if Path(project).is_absolute() else quote(project)
    return uri if uri.endswith("/") else uri + "/"
