"""Run one tool as a subprocess in its own process group, with bounded output and a timeout.

On timeout or cancellation the whole group is killed and the child reaped, so no grandchild
(a pytest worker, a mypy daemon) outlives the hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio

OUTPUT_LIMIT: Final = 8 * 1024 * 1024  # bytes kept of each stream; the rest is read and dropped
_KILL_GRACE: Final = 2.0


@dataclass(frozen=True, kw_only=True)
class ProcessResult:
    """What a finished (or killed) process left behind."""

    exit_code: int | None  # None when it was killed for its timeout
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout: float,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    on_spawn: Callable[[], None] | None = None,
) -> ProcessResult:
    """Run `argv` to its end or its timeout; cancelling the caller kills the process group."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )
    assert process.stdout is not None and process.stderr is not None
    if on_spawn is not None:
        on_spawn()
    timed_out = False
    try:
        with anyio.move_on_after(timeout) as scope:
            out, err, _ = await asyncio.gather(
                _read_bounded(process.stdout), _read_bounded(process.stderr), process.wait()
            )
        if scope.cancelled_caught:
            timed_out = True
            out = err = b""
    finally:
        with anyio.CancelScope(shield=True):
            await kill_group(process)
    return ProcessResult(
        exit_code=None if timed_out else process.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        duration=time.monotonic() - started,
        timed_out=timed_out,
    )


async def kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill the process's whole group (also after a clean exit: grandchildren may linger)."""
    pgid = process.pid  # start_new_session made the child its group's leader
    if process.returncode is None:
        _signal_group(pgid, signal.SIGTERM)
        with anyio.move_on_after(_KILL_GRACE):
            await process.wait()
    _signal_group(pgid, signal.SIGKILL)
    with anyio.move_on_after(_KILL_GRACE):
        await process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _read_bounded(stream: asyncio.StreamReader) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(65_536):
        room = OUTPUT_LIMIT - len(kept)
        if room > 0:
            kept += chunk[:room]
    return bytes(kept)
