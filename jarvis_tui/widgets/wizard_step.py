"""A wizard's step (the base every step subclasses) and the trail of step titles above it."""

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.containers import Vertical
from textual.widget import Widget

if TYPE_CHECKING:
    from jarvis_tui.screens.wizard import RestoreWizard


class WizardStep(Vertical):
    """One step of a wizard. Subclasses set TITLE and fill in the hooks they need."""

    TITLE = ""
    can_go_back = True
    next_label = "Next"

    @property
    def wizard(self) -> "RestoreWizard":
        return cast("RestoreWizard", self.screen)

    def enter(self) -> None:
        """The step became visible (going forward or back)."""

    def problem(self) -> str | None:
        """Why Next is refused right now; None lets the operator go on."""
        return None

    def blocked(self) -> str | None:
        """Why this step cannot lead on at all: Next is disabled and this is shown."""
        return None

    def leave(self) -> None:
        """Going forward: store the choices in the wizard's plan."""


class StepTrail(Widget):
    DEFAULT_CSS = "StepTrail { height: 1; color: $text-muted; }"

    def __init__(self, titles: list[str]):
        super().__init__()
        self.titles = titles
        self.current = 0

    def render(self) -> Text:
        text = Text(" ")
        for number, title in enumerate(self.titles):
            style = (
                "reverse bold"
                if number == self.current
                else ("" if number > self.current else "dim")
            )
            text.append(f"{number + 1} {title}", style=style)
            if number < len(self.titles) - 1:
                text.append(" › ", style="dim")
        return text
