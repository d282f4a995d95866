"""`spruce run --watch`: one job now, then one job per saved change, until Ctrl-C (exit 130).

A change that lands while a job runs cancels that job (its tools are killed) and starts a new
one. Changes to files git ignores (and to .git itself) start nothing.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from spruce.workflow.engine import WorkflowEngine

DEBOUNCE_MS: Final = 400  # changes closer together than this make one run
STEP_MS: Final = 120  # a change is handed on once nothing else changed for this long
_CHECK_IGNORE_TIMEOUT: Final = 10.0


def watch(args: argparse.Namespace) -> int:
    """Run jobs on every change until interrupted; returns 130."""
    import asyncio

    from spruce.errors import UsageError
    from spruce.jobs import resolve_project

    for flag, given in (("--fix", args.fix), ("--staged", args.staged), ("--job-id", args.job_id)):
        if given:
            raise UsageError(f"--watch cannot be combined with {flag}")
    project = resolve_project(args.path, ())
    return asyncio.run(_watch(args, project))


@dataclass
class _State:
    """What the change watcher and the job loop share."""

    generation: int = 0  # bumped on every relevant change
    engine: WorkflowEngine | None = None  # the job running now
    changed: Any = None  # an anyio.Event set on the next change
    stopping: bool = False


async def _watch(args: argparse.Namespace, project: Path) -> int:
    import asyncio
    import signal

    import anyio

    from spruce.cli.run import run_job

    state = _State(changed=anyio.Event())
    stop = anyio.Event()

    def interrupt() -> None:
        state.stopping = True
        stop.set()
        state.changed.set()
        if state.engine is not None:
            state.engine.cancel("interrupted by SIGINT")

    def started(engine: WorkflowEngine) -> None:
        state.engine = engine
        if state.stopping:
            engine.cancel("interrupted by SIGINT")

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_follow_changes, project, state, stop)
            while not state.stopping:
                generation = state.generation
                state.changed = anyio.Event()
                await run_job(args, started=started)
                state.engine = None
                if state.stopping:
                    break
                if state.generation == generation:
                    print("spruce: watching for changes (Ctrl-C to stop)", file=sys.stderr)
                    await state.changed.wait()
            tasks.cancel_scope.cancel()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print("spruce: interrupted", file=sys.stderr)
    return 130


async def _follow_changes(project: Path, state: _State, stop: Any) -> None:
    """Bump the generation on each relevant batch of changes; cancel the job running then."""
    import anyio
    from watchfiles import awatch

    async for changes in awatch(project, debounce=DEBOUNCE_MS, step=STEP_MS, stop_event=stop):
        paths = sorted({path for _, path in changes})
        relevant = await anyio.to_thread.run_sync(_not_ignored, project, paths)
        if not relevant:
            continue
        state.generation += 1
        state.changed.set()
        shown = ", ".join(Path(path).relative_to(project).as_posix() for path in relevant[:3])
        more = f" and {len(relevant) - 3} more" if len(relevant) > 3 else ""
        print(f"spruce: changed: {shown}{more}", file=sys.stderr)
        if state.engine is not None:
            state.engine.cancel("superseded by a newer change")


def _not_ignored(project: Path, paths: list[str]) -> list[str]:
    """The paths git does not ignore (all of them outside a git work tree), less those in tool
    and environment directories."""
    import os
    import subprocess

    from spruce.workflow.files import in_skipped_dir

    # The tools of the run itself write their caches there (.ruff_cache, __pycache__): never a
    # reason to run again, even in a project git does not track or whose .gitignore is silent.
    inside = [
        path
        for path in paths
        if not in_skipped_dir(
            Path(path).relative_to(project).as_posix(), is_dir=not Path(path).is_file()
        )
    ]
    if not inside:
        return []
    try:
        done = subprocess.run(
            ["git", "check-ignore", "-z", "--stdin"],
            cwd=project,
            input=b"".join(os.fsencode(path) + b"\0" for path in inside),
            capture_output=True,
            timeout=_CHECK_IGNORE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return inside
    if done.returncode not in (0, 1):  # 128: not a git work tree
        return inside
    ignored = {os.fsdecode(raw) for raw in done.stdout.split(b"\0") if raw}
    return [path for path in inside if path not in ignored]
