"""`k` with a key set: rotate it (the command line's `keygen --rotate`, then `rekey`).

A new key goes into the settings file; the current one moves to the previous keys, so
every earlier backup still decrypts; then a job seals every backup made under an earlier
key again under the new one."""

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from jarvis_tui.engine_access import LOST_KEY_WARNING, JarvisError, store_new_key

PREVIOUS_KEYS = "BACKUP_ENCRYPTION_KEY_PREVIOUS"
RESEAL_ONLY = ""  # dismissed with: no new key, only the job sealing under the current one


class KeyRotationScreen(ModalScreen[str | None]):
    """Dismisses with the new key's id once it is stored, RESEAL_ONLY to finish an earlier
    rotation's sealing (offered while previous keys are set), None when left."""

    BINDINGS = [("escape", "dismiss(None)", "Not now")]

    def __init__(self, env_file: Path, previous_keys: bool = False):
        super().__init__()
        self.env_file = env_file
        self.previous_keys = previous_keys

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="key-rotation"):
            yield Static("Rotate the encryption key", classes="dialog-title")
            yield Static(
                f"A new key is generated and stored in {self.env_file}; new backups are "
                f"sealed with it. The current key moves to {PREVIOUS_KEYS}, so every earlier "
                "backup still decrypts.\n\nThen a job (Jobs, 3) seals every backup made under "
                "an earlier key again under the new one (each checked, written beside itself, "
                "read back, renamed: a cut-short run loses nothing). Files snapshots made "
                "before keep their data under the old key until pruned; the job says whether "
                "the old key can go."
            )
            yield Static(LOST_KEY_WARNING, classes="warning")
            yield Static("", id="rotation-problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Not now", id="later")
                if self.previous_keys:  # an earlier rotation's sealing may have stopped
                    yield Button("Seal again only", id="reseal")
                yield Button("Rotate and seal again", id="rotate", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#later", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "later":
            self.dismiss(None)
            return
        if event.button.id == "reseal":
            self.dismiss(RESEAL_ONLY)
            return
        try:
            key_id = store_new_key(self.env_file, rotate=True)
        except JarvisError as error:
            problems = getattr(error, "problems", None) or [str(error)]
            self.query_one("#rotation-problem", Static).update(
                Text(f"The key was not rotated: {'; '.join(problems)}", style="red")
            )
            return
        self.dismiss(key_id)
