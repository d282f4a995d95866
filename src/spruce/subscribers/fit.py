"""Which rows of the live tree fit a short terminal: the running rows always, then the phases,
then the hooks that failed, then the others; a phase says how many of its hook rows it hides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

_DONE_OK: Final = frozenset({"passed", "fixed", "skipped"})


@dataclass
class Row:
    """One line of the tree: a phase (`hook` None) or one of its hooks."""

    phase: str
    hook: str | None
    status: str
    hidden: int = field(default=0)  # a phase row: how many of its hook rows are not shown


def fit_rows(rows: list[Row], budget: int) -> list[Row]:
    """At most `budget` of `rows`, in their order, dropping the least telling first: hooks
    waiting for a slot, finished hooks that passed (oldest first), finished hooks that failed,
    the rows of phases that are over, then those still running; running hooks go last."""
    if len(rows) <= budget:
        return rows
    budget = max(budget, 0)
    keep = [True] * len(rows)
    excess = len(rows) - budget
    for rank in (_queued_hook, _passed_hook, _failed_hook, _finished_phase, _phase, _anything):
        for index, row in enumerate(rows):
            if excess == 0:
                break
            if keep[index] and rank(row):
                keep[index] = False
                excess -= 1
        if excess == 0:
            break
    hidden: dict[str, int] = {}
    for row, kept in zip(rows, keep, strict=True):
        if not kept and row.hook is not None:
            hidden[row.phase] = hidden.get(row.phase, 0) + 1
    shown = [row for row, kept in zip(rows, keep, strict=True) if kept]
    for row in shown:
        if row.hook is None:
            row.hidden = hidden.get(row.phase, 0)
    return shown


def _queued_hook(row: Row) -> bool:
    return row.hook is not None and row.status == "queued"


def _passed_hook(row: Row) -> bool:
    return row.hook is not None and row.status in _DONE_OK


def _failed_hook(row: Row) -> bool:
    return row.hook is not None and row.status not in ("running", "queued")


def _finished_phase(row: Row) -> bool:
    return row.hook is None and row.status != "running"


def _phase(row: Row) -> bool:
    return row.hook is None


def _anything(row: Row) -> bool:
    return True
