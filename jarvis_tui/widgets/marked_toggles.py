"""Radio buttons, checkboxes and selection lists whose state reads without colour.

Textual draws every toggle as ▐X▌ and tells on from off, and which one has the
keyboard, by colour alone: on a monochrome terminal (or with NO_COLOR) every
choice looks the same. Here the characters say it: (•) / ( ) for a radio
button, [x] / [ ] for a checkbox or an item of a selection list, and ▶ before
the one that Space or Enter would toggle.
"""

from rich.segment import Segment
from textual.content import Content
from textual.geometry import Size
from textual.strip import Strip
from textual.widgets import Checkbox, RadioButton, RadioSet, SelectionList
from textual.widgets._toggle_button import ToggleButton
from textual.widgets.selection_list import SelectionType

POINTER = "▶ "
NOT_POINTED = "  "


class _MarkedToggle(ToggleButton):
    ON = "[x]"
    OFF = "[ ]"

    @property
    def _button(self) -> Content:
        return Content.styled(
            self.ON if self.value else self.OFF, self.get_visual_style("toggle--button")
        )

    def _pointed(self) -> bool:
        return self.has_focus

    def render(self) -> Content:
        return Content(POINTER if self._pointed() else NOT_POINTED) + super().render()

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return len(POINTER) + super().get_content_width(container, viewport)


class MarkedCheckbox(Checkbox, _MarkedToggle):
    pass


class MarkedRadioButton(RadioButton, _MarkedToggle):
    ON = "(•)"
    OFF = "( )"

    def _pointed(self) -> bool:
        # Inside a set the set has the focus; its highlighted button is the one Space picks.
        parent = self.parent
        if isinstance(parent, RadioSet):
            return parent.has_focus and self.has_class("-selected")
        return self.has_focus


class MarkedSelectionList(SelectionList[SelectionType]):
    """Each item's ▐X▌ becomes [x] or [ ]."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        if len(segments) < 3 or segments[1].text != ToggleButton.BUTTON_INNER:
            return strip
        index = self.scroll_offset.y + y
        selected = self.get_option_at_index(index).value in self.selected
        style = segments[1].style
        marks = [Segment(mark, style) for mark in ("[", "x" if selected else " ", "]")]
        return Strip([*marks, *segments[3:]], strip.cell_length)
