"""WorkflowProgressMonitor: the terminal view of one job, fed by the bus.

On a TTY it is a rich Live view (phases, hooks with spinners then status and duration, a test
progress bar); otherwise it writes one plain line per finished hook, phase and failing test.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Final

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from spruce.bus import Subscription, WorkflowEventBus
from spruce.events import HOOK_END_EVENTS, PHASE_END_EVENTS, Event, WorkflowEvent
from spruce.report.reason import readable_reason
from spruce.report.result import ResultBuilder
from spruce.report.text import closing_line, format_duration, render_findings, selection_lines
from spruce.subscribers.fit import Row, fit_rows

SLOW_HOOK_AFTER: Final = 2.0  # seconds a hook runs before plain output says it started
QUEUED_WORTH_SAYING: Final = 0.1  # seconds of waiting for a CPU slot worth a note
_ICONS: Final = {
    "passed": ("✓", "green"),
    "fixed": ("✓", "yellow"),
    "failed": ("✗", "red"),
    "error": ("!", "red"),
    "timeout": ("!", "red"),
    "cancelled": ("✗", "yellow"),
    "skipped": ("-", "dim"),
}


class WorkflowProgressMonitor:
    """Shows a job's progress on `console` while its events arrive on `bus`.

    With `job_id` None it follows the first job whose event it sees.
    """

    def __init__(
        self,
        bus: WorkflowEventBus,
        console: Console,
        *,
        live: bool,
        job_id: str | None = None,
        slow_after: float = SLOW_HOOK_AFTER,
    ) -> None:
        self.bus = bus
        self.slow_after = slow_after
        self.console = console
        self.live = live
        self.job_id = job_id
        self._builder = ResultBuilder(job_id)
        self._lock = threading.Lock()  # the Live refresh thread reads what the loop writes
        self._subscription: Subscription | None = None
        self._display: Live | None = None
        self._spinners: dict[str, Spinner] = {}
        self._tests_done = 0
        self._tests_total: int | None = None
        self._tests_failed = 0
        self._planned: dict[str, list[str]] = {}  # phase -> hook ids, from session_ready
        self._ended = asyncio.Event()
        self._slow_timers: dict[str, asyncio.TimerHandle] = {}  # plain mode: running hooks

    # lifecycle -------------------------------------------------------------------------------

    def start_monitoring(self) -> None:
        """Subscribe to the bus and, in live mode, start drawing."""
        if self._subscription is not None:
            return
        self._subscription = self.bus.subscribe(
            None, self._on_event, job_id=self.job_id, name="progress"
        )
        if self.live:
            self._display = Live(
                console=self.console,
                get_renderable=self._render,
                refresh_per_second=8,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._display.start()

    def stop_monitoring(self) -> None:
        """Unsubscribe and stop drawing; the final state stays on screen."""
        self._cancel_slow_timers()
        if self._subscription is not None:
            self.bus.unsubscribe(self._subscription)
            self._subscription = None
        if self._display is not None:
            self._display.refresh()
            self._display.stop()
            self._display = None

    async def wait_until_ended(self, *, timeout: float) -> bool:
        """Wait until the job's end event has been shown; False if `timeout` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._ended.wait()
        except TimeoutError:
            return False
        return True

    def result(self) -> dict[str, Any]:
        """The job's result document as far as the monitor has seen it."""
        with self._lock:
            return self._builder.result()

    def summary(self) -> str:
        """What to print after the view: the findings, then the closing line."""
        result = self.result()
        selection = "".join(f"{line}\n" for line in selection_lines(result["tests"]))
        return render_findings(result) + selection + closing_line(result)

    # events ----------------------------------------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        with self._lock:
            self._builder.add(event)
            if event.job_id != self._builder.job_id:
                return
            if event.event is WorkflowEvent.WORKFLOW_SESSION_READY:
                self._planned = _planned_hooks(event.data.get("hooks"))
            elif event.event is WorkflowEvent.TEST_PHASE_STARTED:
                self._tests_total = _int(event.data.get("total"))
            elif event.event is WorkflowEvent.TEST_CASE_COMPLETED:
                self._tests_done = _int(event.data.get("done")) or self._tests_done + 1
                self._tests_total = _int(event.data.get("total")) or self._tests_total
                self._tests_failed += event.data.get("outcome") in ("failed", "error")
        if not self.live:
            self._time_slow_hooks(event)
            line = plain_line(event)
            if line is not None:
                self.console.out(line, highlight=False)
                self.console.file.flush()
        if event.is_end:
            self._ended.set()

    def _time_slow_hooks(self, event: Event) -> None:
        """Piped output says nothing until a hook ends: a hook still running after
        `slow_after` seconds gets a line saying so, so that a log shows what it waits for."""
        step = event.step_id or ""
        if event.event is WorkflowEvent.HOOK_STARTED:
            if step not in self._slow_timers:
                loop = asyncio.get_running_loop()
                self._slow_timers[step] = loop.call_later(self.slow_after, self._say_running, step)
        elif event.event in HOOK_END_EVENTS:
            timer = self._slow_timers.pop(step, None)
            if timer is not None:
                timer.cancel()
        elif event.is_end:
            self._cancel_slow_timers()

    def _cancel_slow_timers(self) -> None:
        for timer in self._slow_timers.values():
            timer.cancel()
        self._slow_timers.clear()

    def _say_running(self, step: str) -> None:
        self.console.out(
            f"{step}: started, still running after {self.slow_after:g}s", highlight=False
        )
        self.console.file.flush()

    # live view -------------------------------------------------------------------------------

    def _render(self) -> RenderableType:
        with self._lock:
            result = self._builder.result(now=time.time())
            tests = (self._tests_done, self._tests_total, self._tests_failed)
            planned = self._planned
        has_tests = any(phase["name"] == "tests" for phase in result["phases"])
        # The tree fits the terminal: a frame taller than it would be cut at the bottom,
        # where the running rows are. One line each for the title, the test bar, the cursor.
        budget = self.console.size.height - 2 - has_tests
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1)
        grid.add_column()
        grid.add_column()
        grid.add_column(justify="right")
        grid.add_column(overflow="ellipsis", no_wrap=True)
        phases = {phase["name"]: phase for phase in result["phases"]}
        hooks = {
            (phase["name"], hook["id"]): hook
            for phase in phases.values()
            for hook in phase["hooks"]
        }
        for row in fit_rows(_tree_rows(result, planned), budget):
            if row.hook is None:
                phase = phases[row.phase]
                hidden = f"{row.hidden} more hook{'s' * (row.hidden != 1)}" if row.hidden else ""
                grid.add_row(
                    self._icon(phase["name"], phase["status"]),
                    Text(phase["name"], style="bold"),
                    Text(phase["status"]),
                    Text(format_duration(phase["duration"])),
                    Text(hidden, style="dim"),
                )
                continue
            hook = hooks.get((row.phase, row.hook))
            if hook is None:  # planned, waiting for a CPU slot
                grid.add_row(
                    Text("·", style="dim"),
                    Text("  " + row.hook, style="dim"),
                    Text("queued", style="dim"),
                )
                continue
            grid.add_row(
                self._icon(f"{row.phase}/{hook['id']}", hook["status"]),
                Text("  " + hook["id"]),
                Text(hook["status"]),
                Text(format_duration(hook["duration"])),
                Text(_hook_note(hook), style="dim"),
            )
        title = Text(
            f"spruce {result['workflow'] or ''} · job {result['job_id']} · {result['status']}",
            style="bold",
        )
        parts: list[RenderableType] = [title, grid]
        if has_tests:
            parts.append(_test_bar(*tests))
        return Group(*parts)

    def _icon(self, key: str, status: str) -> RenderableType:
        if status == "running":
            spinner = self._spinners.get(key)
            if spinner is None:
                spinner = self._spinners[key] = Spinner("dots", style="cyan")
            return spinner
        symbol, style = _ICONS.get(status, ("?", "yellow"))
        return Text(symbol, style=style)


def plain_line(event: Event) -> str | None:
    """The plain-mode line for an event, or None when the event gets no line of its own."""
    data = event.data
    if event.event in HOOK_END_EVENTS:
        name = f"{data.get('phase', '?')}/{data.get('hook', '?')}"
        findings = _int(data.get("findings")) or 0
        notes = [f"{findings} finding{'s' * (findings != 1)}"] if findings else []
        notes += ["cached"] if data.get("cached") else []
        queued = data.get("queued")
        if isinstance(queued, int | float) and queued >= QUEUED_WORTH_SAYING:
            notes.append(f"queued {format_duration(float(queued))}")
        return _status_line(name, data, notes)
    if event.event in PHASE_END_EVENTS:
        notes = []
        if any(data.get(k) for k in ("passed", "failed", "skipped", "errors")):
            notes.append(
                ", ".join(
                    f"{data.get(k, 0)} {k}" for k in ("passed", "failed", "skipped", "errors")
                )
            )
        notes += selection_lines(data)
        return _status_line(str(data.get("phase") or event.step_id), data, notes)
    if event.event is WorkflowEvent.TEST_CASE_COMPLETED and data.get("outcome") in (
        "failed",
        "error",
    ):
        message = _first_line(data.get("message"))
        line = f"{str(data['outcome']).upper()} {data.get('nodeid', '?')}"
        return f"{line}: {message}" if message else line
    return None


def _status_line(name: str, data: dict[str, Any], notes: list[str]) -> str:
    status = str(data.get("status", "?"))
    line = f"{name}: {status}"
    duration = data.get("duration")
    if status != "skipped" and isinstance(duration, int | float):
        line += f" in {format_duration(float(duration))}"
    reason = readable_reason(data.get("reason") or data.get("error"))
    notes = [*notes, reason] if reason else notes
    return f"{line} ({'; '.join(notes)})" if notes else line


def _tree_rows(result: dict[str, Any], planned: dict[str, list[str]]) -> list[Row]:
    """The phases, each followed by its hooks, then by those still waiting for a slot."""
    rows = []
    for phase in result["phases"]:
        name = phase["name"]
        rows.append(Row(name, None, phase["status"]))
        rows += [Row(name, hook["id"], hook["status"]) for hook in phase["hooks"]]
        if phase["status"] == "running":
            seen = {hook["id"] for hook in phase["hooks"]}
            rows += [
                Row(name, hook, "queued") for hook in planned.get(name, ()) if hook not in seen
            ]
    return rows


def _planned_hooks(hooks: object) -> dict[str, list[str]]:
    """session_ready's planned hooks [{"id", "phase"}] by phase."""
    planned: dict[str, list[str]] = {}
    for hook in hooks if isinstance(hooks, list) else ():
        if isinstance(hook, dict) and isinstance(hook.get("id"), str):
            planned.setdefault(str(hook.get("phase")), []).append(hook["id"])
    return planned


def _hook_note(hook: dict[str, Any]) -> str:
    notes = []
    if hook["findings"]:
        count = len(hook["findings"])
        notes.append(f"{count} finding{'s' * (count != 1)}")
    if hook["cached"]:
        notes.append("cached")
    if hook.get("queued", 0.0) >= QUEUED_WORTH_SAYING:
        notes.append(f"queued {format_duration(hook['queued'])}")
    if hook["reason"]:
        notes.append(readable_reason(hook["reason"]))
    return ", ".join(notes)


def _test_bar(done: int, total: int | None, failed: int) -> RenderableType:
    bar = ProgressBar(total=total, completed=done, width=40, pulse=total is None)
    label = f"{done}/{total} tests" if total is not None else f"{done} tests"
    if failed:
        label += f", {failed} failed"
    row = Table.grid(padding=(0, 1))
    row.add_row(Text("tests", style="bold"), bar, Text(label))
    return row


def _first_line(value: object) -> str:
    if not value:
        return ""
    lines = str(value).strip().splitlines()
    return lines[0] if lines else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
