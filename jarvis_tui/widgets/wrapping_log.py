"""A log that wraps each line to the width it is shown at, and wraps again on a resize.

RichLog wraps a line once, to the width it has when written but never below its
`min_width` of 78 cells, and its scrollbar appears only once the lines overflow: at 80
columns the lines were wider than the log, and their last characters were cut ("gzip
leve" / "9"). Here no minimum applies, the scrollbar's place is always kept, and a
change of width wraps every line anew.
"""

from rich.console import RenderableType
from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from jarvis_tui.engine_access import printable


def _lines_printable(text: str) -> str:
    return "\n".join(printable(line) for line in text.split("\n"))


def _without_controls(content: object) -> object:
    """A job's log line names files: ESC in a name would reach the terminal (a new title, a
    cleared screen); it is shown escaped, as the command line shows it. Line breaks stay."""
    if isinstance(content, str):
        return _lines_printable(content)
    if isinstance(content, Text) and _lines_printable(content.plain) != content.plain:
        return Text(_lines_printable(content.plain), style=content.style)
    return content


class WrappingLog(RichLog):
    DEFAULT_CSS = """
    WrappingLog {
        scrollbar-gutter: stable;
    }
    """

    def __init__(self, **options) -> None:
        options.setdefault("wrap", True)
        options.setdefault("markup", False)
        options.setdefault("min_width", 1)
        super().__init__(**options)
        self._written: list[RenderableType | object] = []
        self._wrapped_at = 0

    def write(self, content, *args, **kwargs) -> "WrappingLog":  # type: ignore[override]
        content = _without_controls(content)
        if self._size_known:  # a write made before is deferred, and comes back through here
            kept = content.copy() if isinstance(content, Text) else content
            self._written.append(kept)
            if self.max_lines is not None:
                del self._written[: -self.max_lines]
        super().write(content, *args, **kwargs)
        return self

    def clear(self) -> "WrappingLog":
        self._written.clear()
        super().clear()
        return self

    def on_resize(self, event: Resize) -> None:
        width = self.scrollable_content_region.width
        if width <= 0:
            return
        if self._wrapped_at and width != self._wrapped_at and self._written:
            at_end = self.is_vertical_scroll_end
            super().clear()
            for content in self._written:
                super().write(content, scroll_end=at_end)
        self._wrapped_at = width
