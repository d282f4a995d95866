"""A subscriber that writes each event to the `spruce.events` logger at DEBUG (ends at INFO)."""

from __future__ import annotations

import logging
from typing import Final

from spruce.events import Event

_log: Final = logging.getLogger("spruce.events")


class EventLogger:
    """Logs events; failures and ends at INFO, the rest at DEBUG."""

    def __call__(self, event: Event) -> None:
        level = logging.INFO if event.is_end or event.event.endswith("_failed") else logging.DEBUG
        if _log.isEnabledFor(level):
            _log.log(level, "%s #%d %s %s", event.job_id, event.seq, event.event, event.step_id)
