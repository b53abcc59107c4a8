"""What every pane shares: the bar on top, the footer, and the way to the console."""

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from jarvis_tui.engine_access import Job
from jarvis_tui.widgets.pane_bar import PaneBar

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole


class ConsoleScreen(Screen):
    """Any screen of the console; `console` is the app with its engine access."""

    @property
    def console(self) -> "JarvisConsole":
        return cast("JarvisConsole", self.app)


class PaneScreen(ConsoleScreen):
    PANE = ""

    def compose(self) -> ComposeResult:
        yield PaneBar(self.PANE)
        yield from self.compose_pane()
        yield Footer()

    def compose_pane(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.console.jobs_signal.subscribe(self, self._jobs_changed)
        self.console.catalog_signal.subscribe(self, self.catalog_changed)
        self.console.scheduler_signal.subscribe(self, self._scheduler_changed)
        self._jobs_changed(self.console.jobs)
        self._scheduler_changed(self.console.scheduler_note)

    def _jobs_changed(self, jobs: list[Job]) -> None:
        self.query_one(PaneBar).running = sum(1 for job in jobs if not job.finished)
        self.jobs_changed(jobs)

    def _scheduler_changed(self, note: str) -> None:
        self.query_one(PaneBar).scheduler = note

    def jobs_changed(self, jobs: list[Job]) -> None:
        """Called on every poll of the jobs table (any process's jobs)."""

    def catalog_changed(self, reason: str) -> None:
        """Called when backups were added, verified or removed."""
