"""Tool hooks over file lists longer than one command line, and over chunks run in parallel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from spruce.container import open_services
from spruce.hooks.bandit import bandit_hooks, parse_bandit_json
from spruce.hooks.base import Finding, HookContext
from spruce.hooks.tool import ToolHook
from spruce.workflow.actions import JobContext, run_hook
from spruce.workflow.definitions import HookSpec
from spruce.workflow.process import ProcessResult
from tests.workflow.runner import bare_context

pytestmark = pytest.mark.anyio

# A fake linter: one line "PID FILE" per file argument; exit 1 when it was given a file.
FAKE_TOOL: Final = """\
import os, sys
files = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
sys.stdout.write("".join(f"{os.getpid()} {name}\\n" for name in files))
sys.exit(1 if files else 0)
"""
# Names long enough that 60,000 of them (about 3.4 MB) overflow any usual ARG_MAX (2 MB).
COUNT: Final = 60_000


def parse_fake(result: ProcessResult, project: Path) -> list[Finding]:
    findings = []
    for line in result.stdout.splitlines():
        pid, name = line.split(" ", 1)
        findings.append(
            Finding(
                path=name, line=1, column=1, code=pid, message="seen", severity="error", tool="fake"
            )
        )
    return findings


def fake_hook(*, splittable: bool, chunk_bytes: int = 0) -> ToolHook:
    spec = HookSpec(
        id="fake",
        phase="fast_hooks",
        tool="fake",
        description="fake",
        module="fakelint",
        package="pytest",  # any installed distribution: the tool is the module below
    )
    return ToolHook(
        spec=spec,
        args=("--flag",),
        parse=parse_fake,
        suffixes=(".py",),
        splittable=splittable,
        chunk_bytes=chunk_bytes,
    )


def context(project: Path, paths: list[str]) -> HookContext:
    (project / "fakelint.py").write_text(FAKE_TOOL)
    scratch = project / "scratch"
    scratch.mkdir()
    return bare_context(project, paths, versions={"pytest": "1"}, scratch=scratch)


def many_paths() -> list[str]:
    return [f"package/subpackage_{i // 1000:03d}/module_number_{i:06d}.py" for i in range(COUNT)]


def test_the_generated_file_list_overflows_the_system_argument_limit() -> None:
    assert sum(len(path) + 1 for path in many_paths()) > os.sysconf("SC_ARG_MAX")


@pytest.mark.timeout(300)
async def test_a_file_local_tool_runs_once_per_command_line_and_reports_every_file(
    tmp_path: Path,
) -> None:
    paths = many_paths()
    ctx = context(tmp_path, paths)
    hook = fake_hook(splittable=True)
    prepared = hook.prepare(ctx)
    assert not isinstance(prepared, str)

    result = await hook.execute(ctx, prepared, timeout=120)

    assert (result.status, result.exit_code) == ("failed", 1)
    assert [finding.path for finding in result.findings] == paths
    assert len({finding.code for finding in result.findings}) >= 2  # several invocations


@pytest.mark.timeout(300)
async def test_a_whole_program_tool_sees_an_overlong_file_list_in_one_run(tmp_path: Path) -> None:
    paths = many_paths()
    ctx = context(tmp_path, paths)
    hook = fake_hook(splittable=False)
    prepared = hook.prepare(ctx)
    assert not isinstance(prepared, str)

    result = await hook.execute(ctx, prepared, timeout=120)

    assert (result.status, result.exit_code) == ("failed", 1)
    assert [finding.path for finding in result.findings] == paths
    assert len({finding.code for finding in result.findings}) == 1  # one process saw them all


async def test_a_whole_program_tool_with_a_short_list_keeps_its_plain_command_line(
    tmp_path: Path,
) -> None:
    ctx = context(tmp_path, ["a.py", "b.py"])
    hook = fake_hook(splittable=False)
    prepared = hook.prepare(ctx)
    assert not isinstance(prepared, str)

    result = await hook.execute(ctx, prepared, timeout=60)

    assert [finding.path for finding in result.findings] == ["a.py", "b.py"]
    assert list(ctx.scratch.iterdir()) == []  # no argument file was needed


async def test_a_large_input_runs_as_parallel_chunks_merged_in_file_order(tmp_path: Path) -> None:
    paths = [f"m{i:02d}.py" for i in range(12)]
    for index, path in enumerate(paths):
        (tmp_path / path).write_text("x = 1\n" * (50 * (index % 4 + 1)))
    hook = fake_hook(splittable=True, chunk_bytes=1024)
    async with open_services(store_url="memory://") as services:
        job = JobContext(
            bus=services.bus, job_id="j", hooks=context(tmp_path, paths), plan={}, cache=None
        )
        result = await run_hook(job, "fast_hooks", hook)
        await services.bus.flush()
        events = await services.log.read("j", after=0)

    assert (result.status, result.exit_code) == ("failed", 1)
    assert [finding.path for finding in result.findings] == paths
    total = sum((tmp_path / path).stat().st_size for path in paths)
    expected_runs = min(os.cpu_count() or 2, total // 1024)  # a slot each, 1 KB at least each
    assert len({finding.code for finding in result.findings}) == expected_runs
    assert [event.event.value for event in events] == ["hook_started", "hook_failed"]
    assert events[-1].data["findings"] == 12


async def test_bandit_reports_a_nosec_comment_as_before(tmp_path: Path) -> None:
    source = (
        "import subprocess\n"
        "TABLE = [\n" + "".join(f"    ({i}, 'x'),\n" for i in range(200)) + "]\n"
        "subprocess.call('ls', shell=True)  # nosec B602\n"
        "subprocess.call('ls', shell=True)\n"
    )
    (tmp_path / "app.py").write_text(source)
    ctx = bare_context(tmp_path, ["app.py"], versions={"bandit": "1"})
    hook = bandit_hooks()["bandit"]
    prepared = hook.prepare(ctx)
    assert not isinstance(prepared, str)

    result = await hook.execute(ctx, prepared, timeout=60)
    plain = subprocess.run(
        [sys.executable, "-m", "bandit", "-f", "json", "-q", "app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    expected = parse_bandit_json(
        ProcessResult(exit_code=plain.returncode, stdout=plain.stdout, stderr="", duration=0),
        tmp_path,
    )

    assert (result.status, result.exit_code) == ("failed", plain.returncode)
    assert result.findings == tuple(expected)
    assert ("B602", 205) in [(f.code, f.line) for f in result.findings]
    assert ("B602", 204) not in [(f.code, f.line) for f in result.findings]  # nosec honoured
