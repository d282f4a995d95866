"""The composition root: builds the event log, the one bus and its standard subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spruce.bus import RETRY_WINDOW, Handler, WorkflowEventBus
from spruce.errors import UsageError
from spruce.heartbeat import HEARTBEAT_EVERY
from spruce.orphans import LIVENESS_WINDOW, LivenessJudge, end_orphaned_jobs
from spruce.store import EventLog, open_store, resolve_store_url
from spruce.subscribers.logger import EventLogger
from spruce.subscribers.metrics import MetricsCollector

if TYPE_CHECKING:
    from rich.console import Console

    from spruce.subscribers.progress import WorkflowProgressMonitor


@dataclass(frozen=True)
class ProgressView:
    """Where and how to show one job's progress: a rich live view, or plain lines."""

    console: Console
    live: bool
    job_id: str | None = None


@dataclass(frozen=True)
class Services:
    """What one process shares: pass this (or its parts) to whatever needs them."""

    store_url: str
    log: EventLog
    bus: WorkflowEventBus
    metrics: MetricsCollector
    judge: LivenessJudge
    progress: WorkflowProgressMonitor | None = None


@dataclass(frozen=True)
class Windows:
    """How long spruce waits out each fault, in seconds (see docs/reliability.md)."""

    retry: float = RETRY_WINDOW  # a refused batch is retried this long, then spilled
    liveness: float = LIVENESS_WINDOW  # a heartbeat standing still this long: runner gone
    heartbeat: float = HEARTBEAT_EVERY  # a running job's heartbeat moves this often

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Windows:
        """SPRUCE_RETRY_WINDOW, SPRUCE_LIVENESS_WINDOW and SPRUCE_HEARTBEAT_EVERY, if set."""
        defaults = cls()
        return cls(
            retry=_seconds(environ, "SPRUCE_RETRY_WINDOW", defaults.retry),
            liveness=_seconds(environ, "SPRUCE_LIVENESS_WINDOW", defaults.liveness),
            heartbeat=_seconds(environ, "SPRUCE_HEARTBEAT_EVERY", defaults.heartbeat),
        )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not a number of seconds") from None
    if not 0 < value < 86_400:
        raise UsageError(f"{name} must be between 0 and 86400 seconds")
    return value


@contextlib.asynccontextmanager
async def open_services(
    *,
    store_url: str | None = None,
    follow_other_processes: bool = False,
    extra_subscribers: tuple[Handler, ...] = (),
    progress: ProgressView | None = None,
    end_orphans_every: float | None = None,
) -> AsyncIterator[Services]:
    """Open the log, start the bus, attach the logger and metrics subscribers; close on exit.

    With `follow_other_processes`, events that other processes append to the log (a
    `spruce run` in another terminal) are delivered to this bus's subscribers too.  With
    `progress`, a WorkflowProgressMonitor shows that job on the console.  With
    `end_orphans_every`, running jobs whose runner died are ended that often (seconds).
    """
    url = resolve_store_url(store_url)
    windows = Windows.from_environ(os.environ)
    log = open_store(url)
    await log.open()
    try:
        bus = WorkflowEventBus(log, retry_window=windows.retry, heartbeat_every=windows.heartbeat)
        await bus.start()
        try:
            metrics = MetricsCollector()
            bus.subscribe(None, EventLogger(), name="logger")
            bus.subscribe(None, metrics, name="metrics")
            for handler in extra_subscribers:
                bus.subscribe(None, handler)
            if follow_other_processes:
                bus.tail_log(after=await log.head())
            monitor = _start_progress(bus, progress) if progress else None
            judge = LivenessJudge(log, window=windows.liveness)
            reaper = (
                asyncio.create_task(
                    # Several looks per window, so that the judge sees the heartbeat move.
                    _end_orphans(bus, judge, min(end_orphans_every, windows.liveness / 4)),
                    name="spruce-orphans",
                )
                if end_orphans_every
                else None
            )
            try:
                yield Services(
                    store_url=url,
                    log=log,
                    bus=bus,
                    metrics=metrics,
                    judge=judge,
                    progress=monitor,
                )
            finally:
                if reaper is not None:
                    reaper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reaper
                if monitor is not None:
                    monitor.stop_monitoring()
        finally:
            await bus.aclose()
    finally:
        await log.aclose()


def _start_progress(bus: WorkflowEventBus, view: ProgressView) -> WorkflowProgressMonitor:
    from spruce.subscribers.progress import WorkflowProgressMonitor

    monitor = WorkflowProgressMonitor(bus, view.console, live=view.live, job_id=view.job_id)
    monitor.start_monitoring()
    return monitor


async def _end_orphans(bus: WorkflowEventBus, judge: LivenessJudge, every: float) -> None:
    while True:
        try:
            await end_orphaned_jobs(bus, judge=judge)
        except Exception as exc:  # housekeeping must never take the process down
            logging.getLogger("spruce.orphans").warning("checking for orphaned jobs: %s", exc)
        await asyncio.sleep(every)
