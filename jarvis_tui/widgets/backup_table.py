"""The catalog's backup sets as a virtual table: only the rows in view are drawn.

Replacing the rows (a new filter) is a list swap and one refresh, so 10,000
sets cost no more than 20. Columns that do not fit the width are left out,
least important first, so the table stays readable at 80 columns.
"""

from collections.abc import Callable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from jarvis_tui.catalog_view import SetExtras
from jarvis_tui.engine_access import BackupSet
from jarvis_tui.formatting import human_size, local_moment

PENDING = "…"
# With a copy destination (S3) configured, where a set lives says what is missing there.
WHERE_WITH_COPIES = (20, 2)  # width, priority
# Rows in view ask for their storage places once scrolling or typing pauses this long.
VISIBLE_DELAY_S = 0.2


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    priority: int  # 0 always shown; higher numbers go first when space runs out
    cell: Callable[[BackupSet, SetExtras | None], str]
    right: bool = False


def _verified(backup_set: BackupSet, _: SetExtras | None) -> str:
    return {"ok": "ok", "failed": "FAILED"}.get(backup_set.verified_state or "", "-")


COLUMNS = (
    Column("Backup", 28, 0, lambda s, _: s.id),
    Column("Source", 8, 4, lambda s, _: s.kind),
    Column("Type", 12, 4, lambda _, e: e.types if e else PENDING),
    Column("Tier", 7, 3, lambda s, _: s.tier or "-"),
    Column("Created", 16, 0, lambda s, _: local_moment(s.created_at)),
    Column("Size", 9, 2, lambda s, _: human_size(s.stored_size), right=True),
    Column("Where", 8, 5, lambda _, e: e.places if e else PENDING),
    Column("Verified", 8, 1, _verified),
    Column("Status", 8, 1, lambda s, _: s.status),
)


def _sized(column: Column, id_width: int, with_copies: bool) -> Column:
    if column.title == "Backup":
        return Column(column.title, id_width, column.priority, column.cell, column.right)
    if column.title == "Where" and with_copies:
        return Column(column.title, *WHERE_WITH_COPIES, column.cell, column.right)
    return column


def fit_columns(width: int, id_width: int, with_copies: bool = False) -> list[Column]:
    """The columns that fit `width`, in table order, most important kept first."""
    sized = [_sized(c, id_width, with_copies) for c in COLUMNS]
    chosen: set[str] = set()
    used = 0
    for column in sorted(sized, key=lambda c: c.priority):
        needed = column.width + (1 if chosen else 0)
        if used + needed <= width or column.priority == 0:
            chosen.add(column.title)
            used += needed
    return [c for c in sized if c.title in chosen]


class BackupTable(ScrollView, can_focus=True):
    """Line 0 is the header; line y >= 1 shows row `scroll_y + y - 1`."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "select", "Details", show=False),
    ]

    COMPONENT_CLASSES = {
        "backup-table--header",
        "backup-table--cursor",
        "backup-table--bad",
        "backup-table--good",
        "backup-table--busy",
        "backup-table--empty",
    }

    DEFAULT_CSS = """
    BackupTable { overflow-x: hidden; padding-left: 1; }
    BackupTable > .backup-table--header { text-style: bold; color: $text-accent; }
    BackupTable > .backup-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    BackupTable:blur > .backup-table--cursor { background: $block-cursor-blurred-background; }
    BackupTable > .backup-table--bad { color: $text-error; }
    BackupTable > .backup-table--good { color: $text-success; }
    BackupTable > .backup-table--busy { color: $text-warning; }
    BackupTable > .backup-table--empty { color: $text-muted; text-style: italic; }
    """

    class Highlighted(Message):
        def __init__(self, backup_set: BackupSet | None):
            super().__init__()
            self.backup_set = backup_set

    class Selected(Message):
        def __init__(self, backup_set: BackupSet):
            super().__init__()
            self.backup_set = backup_set

    class RowsShown(Message):
        """Rows came into view whose types and places are not known yet."""

        def __init__(self, set_ids: list[str]):
            super().__init__()
            self.set_ids = set_ids

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.rows: list[BackupSet] = []
        self.extras: dict[str, SetExtras] = {}
        self.cursor = 0
        self.empty_text = "No backups yet."
        self.with_copies = False  # a copy destination is configured: Where is wider
        self._columns: list[Column] = []
        self._visible_timer: Timer | None = None

    # -- data -------------------------------------------------------------------------------

    def show_rows(self, rows: list[BackupSet], keep_id: str | None = None) -> None:
        """Replace the rows; keep the cursor on `keep_id` when it is still there."""
        self.rows = rows
        position = 0
        if keep_id is not None:
            position = next((i for i, s in enumerate(rows) if s.id == keep_id), 0)
        self.cursor = position
        self._relayout()
        self.scroll_to(y=max(0, position - self._page() // 2), animate=False)
        self.refresh()
        self._announce_visible()
        self.post_message(self.Highlighted(self.current))

    def show_copies(self, configured: bool) -> None:
        if configured != self.with_copies:
            self.with_copies = configured
            self._relayout()
            self.refresh()

    def add_extras(self, extras: dict[str, SetExtras]) -> None:
        self.extras.update(extras)
        self.refresh()

    @property
    def current(self) -> BackupSet | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    # -- layout -----------------------------------------------------------------------------

    def _relayout(self) -> None:
        id_width = max((len(s.id) for s in self.rows[:500]), default=24)
        width = max(self.scrollable_content_region.width, 20)
        self._columns = fit_columns(width, max(20, min(id_width, 34)), self.with_copies)
        self.virtual_size = Size(width, len(self.rows) + 1)

    def on_resize(self, _: events.Resize) -> None:
        self._relayout()
        self._announce_visible()

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    # -- drawing ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        plain = self.rich_style  # the widget's own colours under every cell
        if y == 0:
            style = self._foreground("header")
            return self._strip([c.title for c in self._columns], [style] * 9, plain, width)
        index = round(self.scroll_offset.y) + y - 1
        if not self.rows:
            if y == 1:
                style = plain + self._foreground("empty")
                return Strip([Segment(f" {self.empty_text}"[:width].ljust(width), style)])
            return Strip.blank(width, self.rich_style)
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        backup_set = self.rows[index]
        extras = self.extras.get(backup_set.id)
        cells = [c.cell(backup_set, extras) for c in self._columns]
        styles = [self._cell_style(c, backup_set, extras) for c in self._columns]
        base = plain
        if index == self.cursor:
            base = plain + self.get_component_rich_style("backup-table--cursor")
        return self._strip(cells, styles, base, width)

    def _cell_style(self, column: Column, backup_set: BackupSet, extras: SetExtras | None) -> Style:
        if column.title == "Where" and extras is not None:
            name = "bad" if extras.copies_failed else ("busy" if extras.copies_short else None)
        elif column.title == "Status":
            name = {"failed": "bad", "partial": "bad", "running": "busy"}.get(backup_set.status)
        elif column.title == "Verified":
            name = {"ok": "good", "failed": "bad"}.get(backup_set.verified_state or "")
        else:
            name = None
        return self._foreground(name) if name else Style()

    def _foreground(self, name: str) -> Style:
        """A component's colour and weight only: the row's background shows through."""
        style = self.get_component_rich_style(f"backup-table--{name}")
        return Style(color=style.color, bold=style.bold, italic=style.italic)

    def _strip(self, cells: list[str], styles: list[Style], base: Style, width: int) -> Strip:
        segments = []
        for number, (column, text, style) in enumerate(
            zip(self._columns, cells, styles, strict=False)
        ):
            shown = text[: column.width]
            shown = shown.rjust(column.width) if column.right else shown.ljust(column.width)
            if number:
                segments.append(Segment(" ", base))
            segments.append(Segment(shown, base + style))
        used = sum(c.width for c in self._columns) + max(0, len(self._columns) - 1)
        if used < width:
            segments.append(Segment(" " * (width - used), base))
        return Strip(segments).crop(0, width)

    # -- cursor -----------------------------------------------------------------------------

    def move_to(self, position: int) -> None:
        if not self.rows:
            return
        position = min(max(position, 0), len(self.rows) - 1)
        if position == self.cursor:
            return
        self.cursor = position
        top = round(self.scroll_offset.y)
        page = self._page()
        if position < top:
            self.scroll_to(y=position, animate=False)
        elif position >= top + page:
            self.scroll_to(y=position - page + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self.current))

    def action_cursor(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * self._page())

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(len(self.rows) - 1)

    def action_select(self) -> None:
        if self.current is not None:
            self.post_message(self.Selected(self.current))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_to(round(self.scroll_offset.y) + event.y - 1)

    # -- rows coming into view --------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._announce_visible()

    def _announce_visible(self) -> None:
        if self._visible_timer is not None:
            self._visible_timer.stop()
        self._visible_timer = self.set_timer(VISIBLE_DELAY_S, self._post_visible)

    def _post_visible(self) -> None:
        top = round(self.scroll_offset.y)
        shown = self.rows[top : top + self._page() + 1]
        missing = [s.id for s in shown if s.id not in self.extras]
        if missing:
            self.post_message(self.RowsShown(missing))
