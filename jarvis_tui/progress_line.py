"""A CLI job's progress on stderr: a rich progress bar on a terminal, plain lines when piped.

Presentation only (rich, the console's words for amounts and rates, the job log's for
durations); the CLI feeds it the job's updates and says how the job ended.
"""

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from engines.jobs import format_elapsed
from jarvis_tui.formatting import RATE_UNITS, amount, amount_of, rate, speed

# Piped (a log file, a pipe to `tee`): a line this often while the job runs, then the last.
PLAIN_EVERY_S = 15.0


class ProgressLine(Protocol):
    def update(self, done: int, total: int | None, unit: str) -> None: ...

    def finish(self, status: str | None) -> None:
        """`status`: how the job ended (`succeeded`, `failed`, `cancelled`), or None when it
        never started."""


def progress_line(label: str, stream: TextIO | None = None) -> ProgressLine:
    stream = stream or sys.stderr
    if stream.isatty():
        return TerminalProgress(label, stream)
    return PlainProgress(label, stream)


def task_rate(task: Task) -> float | None:
    """Rich's recent speed; before it has two samples, the average since the start."""
    per_second = task.finished_speed or task.speed
    if per_second is None and task.elapsed and task.completed:
        per_second = task.completed / task.elapsed
    return per_second


class AmountColumn(ProgressColumn):
    """`1.2 MiB of 4.4 MiB`, `3 of 5 parts`; only the amount done when the total is unknown."""

    def render(self, task: Task) -> Text:
        unit, done = task.fields["unit"], int(task.completed)
        if task.total is None:
            return Text(amount(done, unit), style="progress.download")
        return Text(amount_of(done, int(task.total), unit), style="progress.download")


class RateColumn(ProgressColumn):
    """`3.4 MiB/s`, `12 keys/s`: the job's own unit (rich's TransferSpeedColumn knows bytes
    only, in decimal units the console does not use)."""

    def render(self, task: Task) -> Text:
        unit = task.fields["unit"]
        if unit not in RATE_UNITS:  # parts or steps a second mean nothing
            return Text("")
        per_second = task_rate(task)
        text = "?" if per_second is None else speed(per_second, unit)
        return Text(text, style="progress.data.speed")


class TerminalProgress:
    """A rich progress bar with the rate and the time left, drawn from the first update."""

    def __init__(self, label: str, stream: TextIO):
        self.label = label
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            AmountColumn(),
            RateColumn(),
            TimeRemainingColumn(elapsed_when_finished=True),
            console=Console(file=stream, highlight=False),
            # stdout may be a file (`--json > out`): only a terminal's lines go above the bar.
            redirect_stdout=sys.stdout.isatty(),
        )

    def update(self, done: int, total: int | None, unit: str) -> None:
        tasks = self.progress.tasks
        if not tasks or tasks[-1].fields["unit"] != unit:
            # A job that moves to another unit starts a new count (and a new rate).
            for task in tasks:
                self.progress.remove_task(task.id)
            self.progress.add_task(self.label, total=total, unit=unit)
        self.progress.update(self.progress.tasks[-1].id, completed=done, total=total)
        self.progress.start()  # drawn from the first update; then it does nothing

    def finish(self, status: str | None) -> None:
        # The state is read from the bar itself: Ctrl-C may land anywhere in update().
        if not self.progress.live.is_started:
            return
        if self.progress.tasks:
            task = self.progress.tasks[-1]
            if status == "succeeded":
                end = task.total or task.completed
                self.progress.update(task.id, completed=end, total=end)
            elif status:
                self.progress.update(task.id, description=f"{self.label} ({status})")
        self.progress.stop()


class PlainProgress:
    """Lines without colour or cursor moves: one every PLAIN_EVERY_S, and the last one when
    the job succeeds (a failure's own message says the rest)."""

    def __init__(self, label: str, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.last_line = self.started
        self.seen: tuple[int, int | None, str] | None = None

    def update(self, done: int, total: int | None, unit: str) -> None:
        self.seen = (done, total, unit)
        now = self.clock()
        if now - self.last_line >= PLAIN_EVERY_S:
            self.last_line = now
            share = f"{min(100 * done / total, 100):.0f}%, " if total else ""
            so_far = amount_of(done, total, unit) if total else amount(done, unit)
            self._write(f"{self.label}: {share}{so_far}{self._rate(done, unit, now, ', {}')}")

    def finish(self, status: str | None) -> None:
        if status != "succeeded" or self.seen is None:
            return
        done, total, unit = self.seen
        done = max(done, total or 0)
        now = self.clock()
        took = format_elapsed(now - self.started)
        share = "100%, " if total else ""
        rate_words = self._rate(done, unit, now, " ({})")
        self._write(f"{self.label}: {share}{amount(done, unit)} in {took}{rate_words}")

    def _rate(self, done: int, unit: str, now: float, form: str) -> str:
        """The average rate since the start in `form`; nothing for parts or steps."""
        return form.format(rate(done, now - self.started, unit)) if unit in RATE_UNITS else ""

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
