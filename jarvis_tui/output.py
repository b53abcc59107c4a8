"""Plain-terminal output for the CLI: tables, JSON, sizes and a TTY progress line."""

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from jarvis_tui.formatting import human_size


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [
        [str(c) for c in headers],
        *[[("-" if c is None else str(c)) for c in r] for r in rows],
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for number, row in enumerate(cells):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
        )
        if number == 0:
            print("  ".join("-" * width for width in widths))


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str, sort_keys=True))


class TerminalProgress:
    """Redraws one status line on stderr when it is a terminal; silent otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0

    def update(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last_draw < 0.1 and done != total):
            return
        self._last_draw = now
        rate = done / max(now - self.started, 1e-6)
        if total:
            filled = int(30 * done / total)
            bar = "#" * filled + "." * (30 - filled)
            text = f"{self.label} [{bar}] {100 * done / total:5.1f}% {human_size(int(rate))}/s"
        else:
            text = f"{self.label} {human_size(done)} {human_size(int(rate))}/s"
        self.stream.write("\r" + text[:120].ljust(60))
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
