"""The one-line bar on top of every pane: where you are, where you can go, what runs."""

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

PANES = (
    ("dashboard", "1", "Dashboard"),
    ("catalog", "2", "Catalog"),
    ("jobs", "3", "Jobs"),
    ("alerts", "4", "Alerts"),
    ("settings", "5", "Settings"),
)


class PaneBar(Widget):
    DEFAULT_CSS = """
    PaneBar { height: 1; background: $panel; color: $text-muted; }
    """

    running = reactive(0)
    scheduler = reactive("")

    def __init__(self, current: str):
        super().__init__()
        self.current = current

    def render(self) -> Text:
        text = Text(" Jarvis backup ", style="bold")
        for name, key, title in PANES:
            style = "reverse bold" if name == self.current else ""
            text.append(f" {key} ", style="bold" if name != self.current else style)
            text.append(f"{title} ", style=style)
        # The running count matters most; the scheduler note goes first when space is short.
        candidates = [[f"{self.running} running"] if self.running else [], []]
        candidates[1] = [*candidates[0], self.scheduler] if self.scheduler else candidates[0]
        for parts in (candidates[1], candidates[0]):
            right = " · ".join(parts) + " "
            gap = self.size.width - text.cell_len - len(right)
            if parts and gap > 0:
                text.append(" " * gap)
                text.append(right, style="bold")
                break
        return text
