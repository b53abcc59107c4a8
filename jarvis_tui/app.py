"""The console's app factory (used by the entry point and the tests)."""

from pathlib import Path

from textual.app import App
from textual.binding import Binding

from engines.config import Settings, load_settings
from engines.joblog import register_secrets
from engines.paths import default_env_file
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.screens.home import HomeScreen
from jarvis_tui.screens.key_setup import KeySetupScreen


class JarvisConsole(App[ExitCode]):
    TITLE = "Jarvis backup console"
    CSS_PATH = "styles/app.tcss"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("k", "offer_key", "New key", show=False)]

    def __init__(self, env_file: Path | None = None):
        super().__init__()
        self.env_file = env_file
        self.settings: Settings = self.load_settings()

    def load_settings(self) -> Settings:
        settings = load_settings(env_file=self.env_file, strict=False)
        register_secrets(settings.secret_values())
        return settings

    def on_mount(self) -> None:
        self.push_screen(HomeScreen(self.settings))
        if self.settings.backup_encryption_key is None and not self.settings.problems:
            self.action_offer_key()

    def action_offer_key(self) -> None:
        target = self.env_file or self.settings.env_file or default_env_file()
        self.push_screen(KeySetupScreen(target), self._key_stored)

    def _key_stored(self, stored: bool | None) -> None:
        if stored:
            self.settings = self.load_settings()
            self.switch_screen(HomeScreen(self.settings))


def make_app(env_file: Path | None = None) -> JarvisConsole:
    return JarvisConsole(env_file)


def run_console(env_file: Path | None = None) -> ExitCode:
    result = make_app(env_file).run()
    return result if result is not None else ExitCode.OK
