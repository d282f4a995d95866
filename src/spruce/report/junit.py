"""`--format junit`: JUnit XML for CI test reports: a testsuite per phase, a testcase per hook,
and one per test when the document lists them (`test_cases=True`), else per failed test.
A hook's failure says how many findings the tool reported, also those not listed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Final

from spruce.report.text import findings_total, format_finding, more_line

# XML 1.0 forbids most control characters; tool output (ANSI colour codes) carries some.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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
        count = findings_total(hook)
        failure = ET.SubElement(
            case,
            "failure",
            type="findings",
            message=reason or f"{count} finding{'s' * (count != 1)}",
        )
        listed = [format_finding(f) for f in hook["findings"]]
        more = more_line(hook, len(listed))
        failure.text = _clean("\n".join(listed + ([more] if more else []))) or None
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
    tests = result["tests"]
    # Every test when the document lists them all, else the failed and erroring ones.
    cases = tests.get("all_cases", tests.get("cases", []))
    for test in cases:
        classname, name = _split_nodeid(test["nodeid"])
        attrs = {"classname": classname, "name": name, "time": _secs(test["duration"])}
        if test["path"]:
            attrs["file"] = test["path"]
        if test["line"] is not None:
            attrs["line"] = str(test["line"])
        case = ET.SubElement(suite, "testcase", attrs)
        message = _clean(test["message"] or "")
        body = _clean(test.get("longrepr") or "") or message or None
        outcome = test["outcome"]
        if outcome == "failed":
            ET.SubElement(case, "failure", message=_first_line(message) or "failed").text = body
        elif outcome == "error":
            ET.SubElement(case, "error", message=_first_line(message) or "error").text = body
        elif outcome in ("skipped", "xfailed"):
            ET.SubElement(case, "skipped", message=message or outcome)


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
