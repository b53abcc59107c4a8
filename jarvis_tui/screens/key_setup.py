"""First run without a key: offer to generate one and say plainly what is at stake."""

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from jarvis_tui.engine_access import LOST_KEY_WARNING, JarvisError, store_new_key


class KeySetupScreen(ModalScreen[bool]):
    BINDINGS = [("escape", "dismiss(False)", "Not now")]

    def __init__(self, env_file: Path):
        super().__init__()
        self.env_file = env_file

    def compose(self) -> ComposeResult:
        with Vertical(id="key-setup"):
            yield Static("No encryption key is configured", classes="title")
            yield Static(
                "Backups are encrypted with AES-256-GCM. Generate a new key and store it in "
                f"{self.env_file} (readable only by you)?"
            )
            yield Static(LOST_KEY_WARNING, classes="warning")
            yield Static("", id="key-result")
            with Horizontal(classes="buttons"):
                yield Button("Generate and store", id="generate", variant="primary")
                yield Button("Not now", id="later")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "later":
            self.dismiss(False)
            return
        try:
            key_id = store_new_key(self.env_file)
        except JarvisError as error:
            self.query_one("#key-result", Static).update(f"Could not store the key: {error}")
            return
        self.notify(f"Key {key_id} stored in {self.env_file}. Copy it off this host now.")
        self.dismiss(True)
