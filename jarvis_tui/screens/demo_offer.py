"""The first start with nothing to back up: offer the demo platform, a small Jarvis of its
own to try backups and every restore on, and start it off the UI thread."""

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from jarvis_tui.demo_access import DemoReady, default_demo_dir, start_demo_platform
from jarvis_tui.engine_access import error_text
from jarvis_tui.messages import DemoFailed, DemoStarted


def offer_text() -> str:
    return (
        "No database or Redis is configured here, and none of the folders to back up "
        "exists (on a fresh machine, the guide's /tmp/jarvis-* folders).\n\n"
        "The demo platform is a small Jarvis of its own to try backups, the catalog, "
        "verification and every restore on: a throwaway PostgreSQL (users, conversations, "
        "tracks) and Redis (sessions, queues), music folders, an app .env and a config "
        f"folder, with their own key and repository, in {escape(str(default_demo_dir()))}. "
        "Nothing else on this machine is touched. To remove it all later, run "
        "jarvis-tui demo --stop in a shell."
    )


class DemoOfferScreen(ModalScreen[DemoReady | None]):
    """Dismissed with the running demo's settings, or None (not now)."""

    BINDINGS = [("escape", "not_now", "Not now")]

    def __init__(self) -> None:
        super().__init__()
        self.starting = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="demo-offer"):
            yield Static("Nothing to back up yet", classes="dialog-title")
            yield Static(offer_text())
            yield Static("", id="demo-progress")
            with Horizontal(classes="buttons"):
                yield Button("Not now", id="later")
                yield Button("Start the demo platform", id="start", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#start", Button).focus()

    def action_not_now(self) -> None:
        if not self.starting:
            self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "later":
            self.action_not_now()
            return
        self.starting = True
        for button in self.query(Button):
            button.disabled = True
        self._show("Starting the demo platform…")
        self.start_demo()

    def _show(self, line: str) -> None:
        self.query_one("#demo-progress", Static).update(escape(line))

    @work(thread=True, exclusive=True, exit_on_error=False, group="demo")
    def start_demo(self) -> None:
        def progress(line: str) -> None:
            self.app.call_from_thread(self._show, f"Demo platform: {line}…")

        try:
            ready = start_demo_platform(progress)
        except Exception as error:
            self.post_message(DemoFailed(error_text(error)))
            return
        self.post_message(DemoStarted(ready))

    def on_demo_started(self, message: DemoStarted) -> None:
        self.dismiss(message.ready)

    def on_demo_failed(self, message: DemoFailed) -> None:
        self.starting = False
        self._show(f"The demo platform did not start: {message.error}")
        self.query_one("#later", Button).disabled = False
        self.query_one("#later", Button).focus()
