"""The CLI's results on stdout: tables drawn by rich, and JSON."""

import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jarvis_tui.engine_access import printable

# Piped, a table is plain text for grep, awk and cut: the header underlined with a line
# of dashes, columns two spaces apart, no colour, one line per row however long.
PLAIN_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
PIPED_WIDTH = 1 << 16


def table_of(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, plain: bool) -> Table:
    table = Table(
        box=PLAIN_HEAD if plain else box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        header_style="" if plain else "bold",
    )
    for header in headers:
        table.add_column(Text(header), overflow="fold")
    for row in rows:
        # Text, not str: a cell such as "[Errno 2]" is not rich markup; a control
        # character (ESC in a file name) is shown escaped, never sent to the terminal.
        table.add_row(*(Text("-" if cell is None else printable(str(cell))) for cell in row))
    return table


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table on stdout: drawn to the terminal's width, or plain text when piped.

    A cell too wide for its column folds onto more lines, never cut to '…' (a set id cut
    short is no use). On a terminal too narrow even for the headers side by side, every
    column would be a character wide: the plain lines are printed and the terminal wraps
    them.
    """
    if sys.stdout.isatty():
        console = Console(file=sys.stdout, highlight=False)
        if console.width >= sum(len(header) + 2 for header in headers):
            console.print(table_of(headers, rows, plain=False))
            return
    buffer = io.StringIO()
    console = Console(file=buffer, width=PIPED_WIDTH, color_system=None, highlight=False)
    console.print(table_of(headers, rows, plain=True))
    for line in buffer.getvalue().splitlines():
        print(line.rstrip())


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str, sort_keys=True))
