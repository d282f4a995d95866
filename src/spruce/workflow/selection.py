"""Test selection: run only the tests whose recorded dependencies changed, plus new tests, tests
whose file changed and tests that did not pass; carry the other outcomes from the map.

The map (per project, in spruce's cache directory, written atomically) holds for each test the
blocks it executed, file by file (`select_plugin` compiles the project's modules to report each
block they enter), and for each file its digest, its top-level CRC and the blocks that ran at
import. What selection cannot see
through runs the whole suite: a change to the pytest command or the installed distributions, a
`cache_env` value, conftest.py or the configuration files, a non-Python file under the tests'
directories, a module's top level or import-time code.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from spruce import __version__
from spruce.hooks import select_plugin
from spruce.hooks.base import HookContext, HookResult, Prepared, TestCase, TestSelection
from spruce.workflow.cache import ResultCache, cache_env_values, project_state_dir
from spruce.workflow.files import FileSet

PLUGIN: Final = "spruce_select_plugin"
MAX_MAP_BYTES: Final = 32 * 1024 * 1024  # a larger map is not kept: the whole suite runs
_SCHEMA: Final = 2
_CARRIABLE: Final = frozenset({"passed", "skipped", "xfailed", "xpassed"})
_CONFIG: Final = ("pyproject.toml", "pytest.ini", "setup.cfg", "tox.ini", ".coveragerc")
_TRUST_REASONS: Final = {
    "tool": "the pytest command, the interpreter or an installed distribution changed",
    "env": "a cache_env value changed",
    "config": "conftest.py or the pytest configuration changed",
    "data": "a non-Python file under the tests' directories changed",
}


class MapFile(msgspec.Struct, frozen=True, array_like=True):
    """A project file the tests imported, as the map last saw it; `opaque` when its blocks were
    not recorded (imported before recording began, or compiled by pytest, as test files are)."""

    digest: str
    top: int
    imports: tuple[int, ...]
    opaque: bool = False


class MapTest(msgspec.Struct, frozen=True, array_like=True):
    """A test's last outcome, the job it ran in, and the blocks it executed per file."""

    outcome: str
    job: str
    deps: dict[str, tuple[int, ...]]


class TestMap(msgspec.Struct, frozen=True):
    """The whole map of one project."""

    __test__ = False

    schema: int
    trust: dict[str, str]
    test_dirs: tuple[str, ...]
    files: dict[str, MapFile]
    tests: dict[str, MapTest]


_decoder: Final = msgspec.json.Decoder(TestMap)


@dataclass(frozen=True, kw_only=True)
class SelectionSettings:
    """How this job selects tests: where the map lives, and why it runs the whole suite anyway
    (`--all-tests`, CI); `record` is off when no later run would use a new map."""

    cache: ResultCache
    job_id: str
    run_all: str | None = None
    record: bool = True


def selection_settings(
    cache: ResultCache | None, job_id: str, *, all_tests: bool, select_in_ci: bool
) -> SelectionSettings | None:
    """The job's settings; None with --no-cache (no map is read or written)."""
    if cache is None:
        return None
    if all_tests:
        return SelectionSettings(cache=cache, job_id=job_id, run_all="--all-tests")
    if os.environ.get("CI", "").lower() in ("true", "1") and not select_in_ci:
        reason = "CI=true (set select_tests = true to select there too)"
        return SelectionSettings(cache=cache, job_id=job_id, run_all=reason, record=False)
    return SelectionSettings(cache=cache, job_id=job_id)


@dataclass(kw_only=True)
class Selector:
    """One pytest run's selection: `begin` decides what to carry, `finish` folds the carried
    outcomes into the result and stores the new map."""

    settings: SelectionSettings
    project: Path
    files: FileSet
    identity: tuple[str, ...]
    cache_env: tuple[str, ...]
    scratch: Path
    previous: TestMap | None = None
    carried: dict[str, MapTest] = field(default_factory=dict)
    reason: str | None = None
    plugin_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def map_key(self) -> str:
        return hashlib.sha256(f"test-map\0{self.project}".encode()).hexdigest()

    def begin(self) -> tuple[list[str], dict[str, str]]:
        """The pytest arguments and environment that load the selection plugin."""
        self.previous = self._load()
        self.reason = self.settings.run_all
        if self.reason is None:
            self.reason, self.carried = plan(self.previous, self.files, self._trust)
        shutil.copyfile(select_plugin.__file__, self.scratch / f"{PLUGIN}.py")
        state = project_state_dir(self.settings.cache.directory, self.project)
        self.plugin_settings = {
            "root": str(self.project),
            "record": self.settings.record,
            "carry": sorted(self.carried),
            "code_cache": str(state / "selection-code"),
            "pycache": str(state / "pycache"),
            "out": str(self.scratch / "selection.json"),
        }
        return ["-p", PLUGIN], self._settings_env("selection-settings.json", {})

    def shard_env(self, index: int) -> dict[str, str]:
        """The environment of one of several pytest processes: settings of its own, whose
        report goes to `selection.json.shard<index>` (merged by `_report`)."""
        out = str(self.scratch / f"selection.json.shard{index}")
        return self._settings_env(f"selection-settings.shard{index}.json", {"out": out})

    def _settings_env(self, name: str, changes: dict[str, Any]) -> dict[str, str]:
        """The plugin's settings (with `changes`) written to `name`, and the variable naming it."""
        path = self.scratch / name
        path.write_text(json.dumps({**self.plugin_settings, **changes}), encoding="utf-8")
        return {select_plugin.ENV_SETTINGS: str(path)}

    def finish(self, result: HookResult) -> HookResult:
        """The result with the carried outcomes; the map updated when the suite completed."""
        report = self._report()
        carried = {nodeid: self.carried[nodeid] for nodeid in report.get("carried", ())}
        if carried and result.exit_code == 5:  # every test carried: pytest saw none to run
            result = msgspec.structs.replace(result, status="passed", reason=None, exit_code=0)
        if result.exit_code in (0, 1) and report.get("recorded") and result.status != "timeout":
            self._save(report, result.test_cases, carried)
        return msgspec.structs.replace(result, selection=summarise(result, carried, self.reason))

    def _known_files(self) -> dict[str, MapFile]:
        return dict(self.previous.files) if self.previous is not None else {}

    def _trust(self, test_dirs: Iterable[str]) -> dict[str, str]:
        return trust_parts(self.files, self.identity, self.cache_env, test_dirs)

    def _load(self) -> TestMap | None:
        data = self.settings.cache.get_bytes(self.map_key)
        if data is None:
            return None
        try:
            loaded = _decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None  # damaged: as if there were none, the whole suite runs
        return loaded if loaded.schema == _SCHEMA else None

    def _report(self) -> dict[str, Any]:
        """The plugin's reports merged: one per pytest process (shards, xdist workers)."""
        reports = []
        for path in sorted(self.scratch.glob("selection.json*")):
            if path.suffix == ".part":
                continue
            try:
                report = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}  # a process that did not finish its report: nothing is recorded
            if isinstance(report, dict):
                reports.append(report)
        return merge_reports(reports)

    def _save(
        self, report: Mapping[str, Any], cases: tuple[TestCase, ...], carried: dict[str, MapTest]
    ) -> None:
        recorded: Mapping[str, Mapping[str, list[int]]] = report.get("tests") or {}
        tests = dict(carried)
        for case in cases:
            deps = recorded.get(case.nodeid, {})
            tests[case.nodeid] = MapTest(
                outcome=case.outcome,
                job=self.settings.job_id,
                deps={path: tuple(blocks) for path, blocks in deps.items()},
            )
        # What the plugin did not report again (unchanged files only imported) stays; files
        # that are gone leave the map.
        files = {
            path: entry
            for path, entry in self._known_files().items()
            if (self.project / path).is_file()
        }
        for path, entry in (report.get("files") or {}).items():
            files[path] = MapFile(
                digest=entry["digest"],
                top=entry["top"],
                imports=tuple(entry["import"]),
                opaque=bool(entry.get("opaque")),
            )
        test_dirs = tuple(sorted({os.path.dirname(nodeid.split("::")[0]) for nodeid in tests}))
        new = TestMap(
            schema=_SCHEMA,
            trust=self._trust(test_dirs),
            test_dirs=test_dirs,
            files=files,
            tests=tests,
        )
        data = msgspec.json.encode(new)
        if len(data) <= MAX_MAP_BYTES:
            self.settings.cache.put_bytes(self.map_key, data)


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several processes' reports as one: every carried test, recorded only if all recorded."""
    if len(reports) <= 1:
        return reports[0] if reports else {}
    merged: dict[str, Any] = {
        "carried": sorted({nodeid for report in reports for nodeid in report.get("carried", ())}),
        "recorded": all(report.get("recorded") for report in reports),
    }
    if merged["recorded"]:
        merged["files"] = {k: v for report in reports for k, v in report.get("files", {}).items()}
        merged["tests"] = {k: v for report in reports for k, v in report.get("tests", {}).items()}
    return merged


def trust_parts(
    files: FileSet, identity: Iterable[str], cache_env: Iterable[str], test_dirs: Iterable[str]
) -> dict[str, str]:
    """Hashes of what selection cannot see through, one per kind (to say which changed)."""
    dirs = tuple(test_dirs)
    config = [
        (path, files.digest(path))
        for path in files.paths
        if path in _CONFIG or path == "conftest.py" or path.endswith("/conftest.py")
    ]
    data = [
        (path, files.digest(path))
        for path in files.paths
        if not path.endswith((".py", ".pyc"))
        and path not in _CONFIG
        and any(not d or path.startswith(d + "/") for d in dirs)
    ]
    parts: dict[str, Any] = {
        "tool": [__version__, *identity],
        "env": cache_env_values(cache_env),
        "config": sorted(config),
        "data": sorted(data),
    }
    return {
        name: hashlib.sha256(json.dumps(value).encode()).hexdigest()
        for name, value in parts.items()
    }


def plan(
    previous: TestMap | None, files: FileSet, trust: Any
) -> tuple[str | None, dict[str, MapTest]]:
    """(why the whole suite runs, or None; the tests whose outcomes are carried)."""
    if previous is None:
        return "no test map yet", {}
    current_trust = trust(previous.test_dirs)
    for name, reason in _TRUST_REASONS.items():
        if previous.trust.get(name) != current_trust[name]:
            return reason, {}
    test_files = {nodeid.split("::")[0] for nodeid in previous.tests}
    known = set(files.paths)
    changed_blocks: dict[str, set[int]] = {}
    for path, entry in previous.files.items():
        # A file the tests ran but spruce does not list (ignored, excluded) is read directly.
        data = files.read(path) if path in known else _read(files.root / path)
        if data is None:
            return f"{path} was removed", {}
        if select_plugin.digest(data) == entry.digest:
            continue
        try:
            top, bodies = select_plugin.file_blocks(data)
        except (SyntaxError, ValueError):
            return f"{path} does not parse", {}
        blocks = {crc for _, _, crc in bodies}
        if path not in test_files and entry.opaque:
            return f"{path} changed, and its blocks were not recorded", {}
        if path not in test_files and (top != entry.top or not set(entry.imports) <= blocks):
            return f"module-level code of {path} changed", {}
        changed_blocks[path] = blocks
    carried = {
        nodeid: test
        for nodeid, test in previous.tests.items()
        if test.outcome in _CARRIABLE
        and nodeid.split("::")[0] not in changed_blocks
        and all(
            path not in changed_blocks or set(crcs) <= changed_blocks[path]
            for path, crcs in test.deps.items()
        )
    }
    return None, carried


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def summarise(result: HookResult, carried: dict[str, MapTest], reason: str | None) -> TestSelection:
    """What ran and what was carried, in numbers and in one plain sentence."""
    selected = len(result.test_cases)
    jobs = collections.Counter(test.job for test in carried.values())
    carried_from = jobs.most_common(1)[0][0] if jobs else None
    total = selected + len(carried)
    if carried:
        summary = (
            f"{selected:,} of {total:,} tests run; {len(carried):,} carried from job {carried_from}"
        )
        if len(jobs) > 1:
            summary += f" (and {len(jobs) - 1} earlier job{'s' if len(jobs) > 2 else ''})"
    else:
        summary = f"all {selected:,} tests run" + (f": {reason}" if reason else "")
    return TestSelection(
        selected=selected,
        carried=len(carried),
        carried_from=carried_from,
        carried_outcomes=dict(collections.Counter(test.outcome for test in carried.values())),
        summary=summary,
        reason=reason,
    )


def phase_fields(results: Iterable[HookResult], counts: dict[str, int]) -> dict[str, Any]:
    """The tests phase's end counts with the carried outcomes folded in, and what selection did."""
    selections = [result.selection for result in results if result.selection is not None]
    if not selections:
        return counts
    chosen = selections[0]
    merged = dict(counts)
    for outcome, number in chosen.carried_outcomes.items():
        key = {"error": "errors"}.get(outcome, outcome)
        if key in merged:
            merged[key] += number
    merged["total"] = counts.get("total", 0) + chosen.carried
    return {
        **merged,
        "selected": chosen.selected,
        "carried": chosen.carried,
        "carried_from": chosen.carried_from,
        "selection": chosen.summary,
    }


def open_selector(ctx: HookContext, prepared: Prepared) -> Selector | None:
    """The pytest run's selector, or None when the job does not select (--no-cache)."""
    if ctx.selection is None:
        return None
    return Selector(
        settings=ctx.selection,
        project=ctx.project,
        files=ctx.files,
        identity=prepared.identity,
        cache_env=ctx.config.cache_env,
        scratch=ctx.scratch,
    )
