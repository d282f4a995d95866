"""The composition root: builds the event log, the one bus and its standard subscribers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from spruce.bus import Handler, WorkflowEventBus
from spruce.store import EventLog, open_store, resolve_store_url
from spruce.subscribers.logger import EventLogger
from spruce.subscribers.metrics import MetricsCollector


@dataclass(frozen=True)
class Services:
    """What one process shares: pass this (or its parts) to whatever needs them."""

    store_url: str
    log: EventLog
    bus: WorkflowEventBus
    metrics: MetricsCollector


@contextlib.asynccontextmanager
async def open_services(
    *,
    store_url: str | None = None,
    follow_other_processes: bool = False,
    extra_subscribers: tuple[Handler, ...] = (),
) -> AsyncIterator[Services]:
    """Open the log, start the bus, attach the logger and metrics subscribers; close on exit.

    With `follow_other_processes`, events that other processes append to the log (a
    `spruce run` in another terminal) are delivered to this bus's subscribers too.
    """
    url = resolve_store_url(store_url)
    log = open_store(url)
    await log.open()
    try:
        bus = WorkflowEventBus(log)
        await bus.start()
        try:
            metrics = MetricsCollector()
            bus.subscribe(None, EventLogger(), name="logger")
            bus.subscribe(None, metrics, name="metrics")
            for handler in extra_subscribers:
                bus.subscribe(None, handler)
            if follow_other_processes:
                bus.tail_log(after=await log.head())
            yield Services(store_url=url, log=log, bus=bus, metrics=metrics)
        finally:
            await bus.aclose()
    finally:
        await log.aclose()
