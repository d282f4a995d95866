"""Run one tool as a subprocess in its own process group, with bounded output and a timeout.

On timeout or cancellation the whole group is killed and the child reaped, so no grandchild
(a pytest worker, a mypy daemon) outlives the hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio

OUTPUT_LIMIT: Final = 8 * 1024 * 1024  # bytes kept of each stream; the rest is read and dropped
_KILL_GRACE: Final = 2.0
_PIPE_SIZE: Final = 1024 * 1024  # a polled pipe holds this much between two looks


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
    poll: float | None = None,
) -> ProcessResult:
    """Run `argv` to its end or its timeout; cancelling the caller kills the process group.

    With `poll`, its output is read every `poll` seconds instead of on every write: for a tool
    that writes a byte per test (pytest's progress dots), that is thousands fewer wake-ups."""
    started = time.monotonic()
    pipes = [open_pipe(), open_pipe()] if poll is not None else []
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=pipes[0][1] if pipes else asyncio.subprocess.PIPE,
            stderr=pipes[1][1] if pipes else asyncio.subprocess.PIPE,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    except BaseException:
        for read_end, write_end in pipes:
            os.close(read_end)
            os.close(write_end)
        raise
    for _, write_end in pipes:
        os.close(write_end)
    if on_spawn is not None:
        on_spawn()
    timed_out = False
    try:
        with anyio.move_on_after(timeout) as scope:
            if poll is not None:
                stdout, stderr = (_poll_bounded(read_end, poll) for read_end, _ in pipes)
            else:
                assert process.stdout is not None and process.stderr is not None
                stdout, stderr = _read_bounded(process.stdout), _read_bounded(process.stderr)
            out, err, _ = await asyncio.gather(stdout, stderr, process.wait())
        if scope.cancelled_caught:
            timed_out = True
            out = err = b""
    finally:
        for read_end, _ in pipes:
            with contextlib.suppress(OSError):
                os.close(read_end)
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
        # SIGKILL is queued at once but acted on when each member next runs: on a busy machine
        # a grandchild can outlive this call by a moment unless we wait for the group to empty.
        while _group_has_live_member(pgid):
            await anyio.sleep(0.01)


def _group_has_live_member(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies, which a parent elsewhere must reap,
    do not). Cheap when the group is empty, the usual case: one killpg(0)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True  # no way to tell zombies apart: wait out the grace
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # after the command's closing parenthesis: state, ppid, pgrp, …
            state, _, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state not in ("Z", "X"):
            return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def open_pipe() -> tuple[int, int]:
    """A pipe (read end, write end), as large as the system allows up to 1 MiB, so that a
    writer rarely waits between two looks of a polling reader."""
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)  # Linux only
    return read_end, write_end


async def poll_pipe(fd: int, *, interval: float) -> AsyncGenerator[bytes, None]:
    """What arrives on the read end `fd`, looked at every `interval` seconds, until every
    writer has closed it. Each look drains what is there (a block of at most 1 MiB)."""
    os.set_blocking(fd, False)
    while True:
        block = bytearray()
        ended = False
        while len(block) < _PIPE_SIZE:
            try:
                chunk = os.read(fd, 65_536)
            except BlockingIOError:
                break
            if not chunk:
                ended = True
                break
            block += chunk
        if block:
            yield bytes(block)
        if ended:
            return
        if len(block) < _PIPE_SIZE:
            await anyio.sleep(interval)


async def _poll_bounded(fd: int, interval: float) -> bytes:
    kept = bytearray()
    async with contextlib.aclosing(poll_pipe(fd, interval=interval)) as blocks:
        async for block in blocks:
            room = OUTPUT_LIMIT - len(kept)
            if room > 0:
                kept += block[:room]
    return bytes(kept)


async def _read_bounded(stream: asyncio.StreamReader) -> bytes:
    kept = bytearray()
    while chunk := await stream.read(65_536):
        room = OUTPUT_LIMIT - len(kept)
        if room > 0:
            kept += chunk[:room]
    return bytes(kept)


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity, which a container or `taskset` limits
    (`os.cpu_count` counts the whole machine's)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def process_exists(pid: object) -> bool:
    """Whether a process with this id runs on this host (one owned by another user counts)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
