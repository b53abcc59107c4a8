"""Confirmations: a plain yes/no, and one that makes the operator type a name."""

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [("escape", "dismiss(False)", "Back")]

    def __init__(self, title: str, question: str, confirm_label: str = "Yes"):
        super().__init__()
        self.title_text = title
        self.question = question
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(self.question)
            with Horizontal(classes="buttons"):
                yield Button("Back", id="no")
                yield Button(self.confirm_label, id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class TypedConfirmScreen(ModalScreen[bool]):
    """Nothing destructive happens until the operator types `expected` exactly."""

    BINDINGS = [("escape", "dismiss(False)", "Back")]

    def __init__(self, title: str, consequence: str, expected: str, confirm_label: str):
        super().__init__()
        self.title_text = title
        self.consequence = consequence
        self.expected = expected
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog danger"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(self.consequence)
            yield Static(f"Type [b]{self.expected}[/b] to confirm:", markup=True)
            yield Input(placeholder=self.expected, id="typed")
            yield Static(id="typed-mismatch", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Back", id="no")
                yield Button(self.confirm_label, id="yes", variant="error", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#typed-mismatch", Static).display = False
        self.query_one("#typed", Input).focus()

    @on(Input.Changed, "#typed")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#yes", Button).disabled = event.value != self.expected
        self.query_one("#typed-mismatch", Static).display = False

    @on(Input.Submitted, "#typed")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value == self.expected:
            self.dismiss(True)
            return
        mismatch = self.query_one("#typed-mismatch", Static)
        mismatch.update(self.mismatch_line(event.value))
        mismatch.display = True

    def mismatch_line(self, typed: str) -> str:
        """Enter on a wrong name must say so, not do nothing in silence."""
        if not typed.strip():
            return f"Nothing typed: type {self.expected} to confirm, or press Escape to go back."
        return (
            f"{typed!r} not found: this confirms only {self.expected}, nothing was done. "
            "Type it exactly, or press Escape to go back."
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes" and not event.button.disabled)
