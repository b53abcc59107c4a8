"""A DataTable of rows where g/G and Home/End go to the first and last row.

Textual's own Home and End scroll sideways to the first and last column, which a
table chosen by rows never needs.
"""

from textual.binding import Binding
from textual.widgets import DataTable


class RowTable(DataTable):
    BINDINGS = [
        Binding("g,home", "scroll_top", "First row", show=False),
        Binding("G,end", "scroll_bottom", "Last row", show=False),
    ]

    def __init__(self, **options) -> None:
        options.setdefault("cursor_type", "row")
        super().__init__(**options)
