"""Event log backends, chosen by URL: `memory://`, `sqlite:///ABS/PATH.db`, `redis://HOST:PORT/DB`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

from spruce.errors import StoreURLError
from spruce.store.base import EventLog, JobRecord, Retention, follow_all, follow_job

STORE_ENV: Final = "SPRUCE_STORE"

__all__ = [
    "STORE_ENV",
    "EventLog",
    "JobRecord",
    "Retention",
    "default_store_url",
    "follow_all",
    "follow_job",
    "open_store",
    "resolve_store_url",
    "sqlite_path",
]


def default_store_url() -> str:
    """`sqlite:///…/spruce/events.db` in the user's state directory."""
    from platformdirs import user_state_dir

    return f"sqlite://{Path(user_state_dir('spruce')) / 'events.db'}"


def resolve_store_url(explicit: str | None) -> str:
    """--store wins, then SPRUCE_STORE, then the default SQLite file."""
    return explicit or os.environ.get(STORE_ENV) or default_store_url()


def open_store(url: str) -> EventLog:
    """Build (not yet open) the event log a URL names; StoreURLError for anything unknown."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        from spruce.store.memory import MemoryEventLog

        return MemoryEventLog(url)
    if scheme == "sqlite":
        from spruce.store.sqlite import SQLiteEventLog

        return SQLiteEventLog(sqlite_path(url), url=url, retention=_retention_from(parts.query))
    if scheme in ("redis", "rediss"):
        try:
            from spruce.store.redis import RedisEventLog  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise StoreURLError(
                f"{url}: the Redis backend needs the redis extra: pip install 'spruce[redis]'"
            ) from exc
        log: EventLog = RedisEventLog(url, retention=_retention_from(parts.query))
        return log
    raise StoreURLError(f"unknown store URL {url!r}: use memory://, sqlite:///PATH.db or redis://")


def sqlite_path(url: str) -> Path:
    """`sqlite:///abs/x.db` and `sqlite:////abs/x.db` are absolute; `sqlite://x.db` is relative."""
    rest = url.split("://", 1)[1].split("?", 1)[0]
    if not rest or rest.strip("/") == "":
        raise StoreURLError(f"{url!r} names no database file")
    if rest.startswith("/"):
        return Path("/" + rest.lstrip("/"))
    return Path.cwd() / rest


def _retention_from(query: str) -> Retention:
    """Automatic retention limits from the URL query: ?keep_days=30&keep_jobs=1000.

    `none` lifts a limit; a missing option keeps the default.
    """
    values = {key: vals[-1] for key, vals in parse_qs(query).items()}
    unknown = set(values) - {"keep_days", "keep_jobs", "max_events_per_job"}
    if unknown:
        raise StoreURLError(f"unknown store URL option(s): {', '.join(sorted(unknown))}")
    defaults = Retention()

    def limit(name: str, kind: type[float] | type[int], default: float | None) -> float | None:
        if name not in values:
            return default
        if values[name].lower() == "none":
            return None
        try:
            value = kind(values[name])
        except ValueError:
            raise StoreURLError(
                f"store URL option {name}={values[name]!r} is not a number"
            ) from None
        if value <= 0:
            raise StoreURLError(f"store URL option {name} must be positive or none")
        return value

    keep_jobs = limit("keep_jobs", int, defaults.keep_jobs)
    max_events = limit("max_events_per_job", int, None)
    return Retention(
        keep_days=limit("keep_days", float, defaults.keep_days),
        keep_jobs=int(keep_jobs) if keep_jobs is not None else None,
        max_events_per_job=int(max_events) if max_events is not None else None,
    )
