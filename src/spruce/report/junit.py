"""`--format junit`: JUnit XML for CI test reports: a testsuite per phase, a testcase per hook,
and one per test when the document lists them (`test_cases=True`), else per failing test."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Final

from spruce.report.text import format_finding

# XML 1.0 forbids most control characters; tool output (ANSI colour codes) carries some.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEST_CODES: Final = {"test-failed": "failed", "test-error": "error"}


def render_junit(result: dict[str, Any]) -> str:
    """The JUnit XML document, ending with a newline."""
    root = ET.Element("testsuites", name=f"spruce {result['workflow']}".strip())
    for phase in result["phases"]:
        suite = ET.SubElement(root, "testsuite", name=phase["name"], time=_secs(phase["duration"]))
        for hook in phase["hooks"]:
            _hook_case(suite, phase["name"], hook)
        if phase["name"] == "tests":
            _test_cases(suite, result)
        _count(suite, suite)
    _count(root, *root)
    root.set("time", _secs(result["duration"]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _hook_case(suite: ET.Element, phase: str, hook: dict[str, Any]) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"spruce.{phase}",
        name=hook["id"],
        time=_secs(hook["duration"]),
    )
    status, reason = hook["status"], _clean(hook["reason"] or "")
    if status == "failed":
        count = len(hook["findings"])
        failure = ET.SubElement(
            case,
            "failure",
            type="findings",
            message=reason or f"{count} finding{'s' * (count != 1)}",
        )
        failure.text = _clean("\n".join(format_finding(f) for f in hook["findings"])) or None
    elif status in ("error", "timeout"):
        ET.SubElement(case, "error", type=status, message=reason or status)
    elif status in ("skipped", "running"):
        ET.SubElement(case, "skipped", message=reason or status)
    elif status == "fixed" or hook["cached"]:
        out = ET.SubElement(case, "system-out")
        out.text = " ".join(
            filter(None, (status == "fixed" and "fixed", hook["cached"] and "cached"))
        )


def _test_cases(suite: ET.Element, result: dict[str, Any]) -> None:
    cases = result["tests"].get("cases")
    if cases is None:
        cases = _cases_from_findings(result)
    for test in cases:
        classname, name = _split_nodeid(test["nodeid"])
        attrs = {"classname": classname, "name": name, "time": _secs(test["duration"])}
        if test["path"]:
            attrs["file"] = test["path"]
        if test["line"] is not None:
            attrs["line"] = str(test["line"])
        case = ET.SubElement(suite, "testcase", attrs)
        message = _clean(test["message"] or "")
        outcome = test["outcome"]
        if outcome == "failed":
            ET.SubElement(case, "failure", message=_first_line(message) or "failed").text = (
                message or None
            )
        elif outcome == "error":
            ET.SubElement(case, "error", message=_first_line(message) or "error").text = (
                message or None
            )
        elif outcome == "skipped":
            ET.SubElement(case, "skipped", message=message or "skipped")


def _cases_from_findings(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Failing tests as the pytest hook's findings tell them, when the cases were not kept."""
    cases = []
    for phase in result["phases"]:
        for hook in phase["hooks"]:
            for finding in hook["findings"]:
                outcome = _TEST_CODES.get(finding["code"])
                if outcome is None:
                    continue
                line = finding["line"]
                cases.append(
                    {
                        "nodeid": f"{finding['path']}::line {line}" if line else finding["path"],
                        "outcome": outcome,
                        "duration": 0.0,
                        "path": finding["path"],
                        "line": line,
                        "message": finding["message"],
                    }
                )
    return cases


def _split_nodeid(nodeid: str) -> tuple[str, str]:
    """pytest's junitxml names: `t/test_x.py::TestA::test_y` is `t.test_x.TestA`, `test_y`."""
    parts = nodeid.split("::")
    module = parts[0].removesuffix(".py").replace("/", ".")
    if len(parts) == 1:
        return module, module
    return ".".join([module, *parts[1:-1]]), parts[-1]


def _count(target: ET.Element, *suites: ET.Element) -> None:
    cases = [case for suite in suites for case in suite.iter("testcase")]
    target.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        target.set(attr, str(sum(case.find(tag) is not None for case in cases)))


def _secs(seconds: float) -> str:
    return f"{seconds:.3f}"


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _first_line(text: str) -> str:
    return text.strip().partition("\n")[0]
