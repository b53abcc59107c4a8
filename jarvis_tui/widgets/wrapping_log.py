"""A log that wraps each line to the width it is shown at, and wraps again on a resize.

RichLog wraps a line once, to the width it has when written but never below its
`min_width` of 78 cells, and its scrollbar appears only once the lines overflow: at 80
columns the lines were wider than the log, and their last characters were cut ("gzip
leve" / "9"). Here no minimum applies, the scrollbar's place is always kept, and a
change of width wraps every line anew.
"""

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog


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
        self._texts: list[Text] = []
        self._wrapped_at = 0

    def write(self, content, *args, **kwargs) -> "WrappingLog":  # type: ignore[override]
        if isinstance(content, str):
            content = Text(content)
        if isinstance(content, Text) and self._size_known:  # a deferred write comes back
            self._texts.append(content.copy())
            if self.max_lines is not None:
                del self._texts[: -self.max_lines]
        super().write(content, *args, **kwargs)
        return self

    def clear(self) -> "WrappingLog":
        self._texts.clear()
        super().clear()
        return self

    def on_resize(self, event: Resize) -> None:
        width = self.scrollable_content_region.width
        if width <= 0:
            return
        if self._wrapped_at and width != self._wrapped_at and self._texts:
            texts = self._texts
            at_end = self.is_vertical_scroll_end
            super().clear()
            for text in texts:
                super().write(text, scroll_end=at_end)
        self._wrapped_at = width
