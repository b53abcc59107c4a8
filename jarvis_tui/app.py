"""The console's app and its factory (used by the entry point, the tests and the benchmark).

The app owns what every pane shares: the settings, the door to the engine,
the jobs poller (which sees jobs of every process through the catalog), the
jobs this console runs itself, and the in-process scheduler.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from jarvis_tui.dashboard_view import DiskProbe, repository_disk_space
from jarvis_tui.demo_access import DemoReady, demo_wanted
from jarvis_tui.engine_access import (
    EngineAccess,
    Job,
    Settings,
    close_logging,
    configure_logging,
    default_env_file,
    error_text,
)
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.job_runner import JobRunner
from jarvis_tui.jobs_watch import JobsWatch
from jarvis_tui.maintenance_jobs import MaintenanceJobs
from jarvis_tui.message_history import KeptNotifications
from jarvis_tui.messages import CatalogChanged, WorkspaceFailed
from jarvis_tui.notifications import OutcomeNotifications
from jarvis_tui.palette import ConsoleCommands
from jarvis_tui.scheduler_host import SchedulerHost
from jarvis_tui.screens import lazy
from jarvis_tui.screens.backup_chooser import BackupChoice, BackupChooser
from jarvis_tui.screens.base import PaneScreen
from jarvis_tui.screens.dashboard import DashboardScreen
from jarvis_tui.screens.demo_offer import DemoOfferScreen
from jarvis_tui.screens.help import HelpScreen, screen_title
from jarvis_tui.screens.key_rotation import RESEAL_ONLY, KeyRotationScreen
from jarvis_tui.screens.key_setup import KeySetupScreen
from jarvis_tui.screens.maintenance import MaintenanceMenu, run_maintenance
from jarvis_tui.screens.message_history import MessagesScreen
from jarvis_tui.screens.quit_jobs import LEAVE, QuitWhileJobsRun
from jarvis_tui.screens.restore_chooser import RestoreChooser, open_restore
from jarvis_tui.settings_reload import SettingsReload

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class JarvisConsole(
    JobsWatch, OutcomeNotifications, SettingsReload, KeptNotifications, App[ExitCode]
):
    TITLE = "Jarvis backup console"
    CSS_PATH = "styles/app.tcss"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    DEFAULT_MODE = "dashboard"
    MODES = {
        "dashboard": DashboardScreen,
        "catalog": lazy.catalog_screen,
        "jobs": lazy.jobs_screen,
        "alerts": lazy.alerts_screen,
        "settings": lazy.settings_screen,
    }
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide"), (160, "-huge")]
    BINDINGS = [
        Binding("1", "pane('dashboard')", "Dashboard", show=False),
        Binding("2", "pane('catalog')", "Catalog", show=False),
        Binding("3", "pane('jobs')", "Jobs", show=False),
        Binding("4", "pane('alerts')", "Alerts", show=False),
        Binding("5", "pane('settings')", "Settings", show=False),
        Binding("question_mark,f1", "help", "Help"),
        Binding("b", "backup_now", "Backup"),
        Binding("R", "restore", "Restore"),
        Binding("q", "quit", "Quit"),
        Binding("k", "offer_key", "Encryption key", show=False),
        Binding("n", "messages", "Messages", show=False),
        Binding("m", "maintenance", "Maintenance", show=False),
    ]

    def __init__(
        self,
        env_file: Path | None = None,
        *,
        clock: Clock | None = None,
        disk_space: DiskProbe | None = None,
        poll_seconds: float | None = 1.0,
        host_scheduler: bool = True,
    ):
        super().__init__()
        self.env_file = env_file
        self.clock: Clock = clock or _utc_now
        self.disk_space: DiskProbe = disk_space or repository_disk_space
        self.poll_seconds = poll_seconds
        self.settings: Settings = self.read_settings()
        self.access = EngineAccess(self.settings)
        self.runner = JobRunner(self)
        self.maintenance = MaintenanceJobs(self.runner)
        self.scheduler = SchedulerHost(self, enabled=host_scheduler)
        self.jobs: list[Job] = []
        self.scheduler_note = ""
        self.jobs_signal: Signal[list[Job]] = Signal(self, "jobs")
        self.catalog_signal: Signal[str] = Signal(self, "catalog")
        self.scheduler_signal: Signal[str] = Signal(self, "scheduler")
        self._jobs_polled_once = False
        self.walkthrough_states: dict[int, str] = {}
        # Step: what its wizard restored (kind, backup reference, report), for step 8.
        self.walkthrough_restored: dict[int, tuple[str, str, object]] = {}

    # -- start and stop ---------------------------------------------------------------------

    def on_mount(self) -> None:
        self.start_logging()
        self.poll_jobs()
        if self.poll_seconds:
            self.set_interval(self.poll_seconds, self.poll_jobs)
        self.scheduler.start()
        if demo_wanted(self.settings):
            self.push_screen(DemoOfferScreen(), self._demo_answered)
        else:
            self._offer_key_if_wanted()

    def _offer_key_if_wanted(self) -> None:
        key_wanted = self.settings.backup_encryption_key is None and not (
            self.settings.backup_encryption_key_secret_id  # kept in AWS Secrets Manager
        )
        if key_wanted and not self.settings.problems:
            self.action_offer_key()

    def _demo_answered(self, ready: DemoReady | None) -> None:
        if ready is None:
            self._offer_key_if_wanted()
            return
        # The operator chose the demo: its settings apply without a reload's question.
        self.env_file = ready.platform.env_file
        self.use_settings(ready.check)
        self.notify("The demo platform runs: press b to back it up.", timeout=8)

    def on_unmount(self) -> None:
        self.scheduler.stop()
        self.access.close()
        close_logging()

    @work(thread=True, exclusive=True, exit_on_error=False, group="logging")
    def start_logging(self) -> None:
        try:
            configure_logging(self.settings.log_dir)
        except Exception as error:  # the console works without its log file; say why
            self.call_from_thread(
                self.notify,
                f"Logging to {self.settings.log_dir} is off: {error}",
                severity="warning",
            )

    async def action_quit(self) -> None:
        own = self.runner.running()
        current = self.scheduler.current_job
        scheduled = f"{current[1]} (job {current[0]})" if current else None
        if not own and not scheduled:
            self.exit(ExitCode.OK)
            return
        self.push_screen(QuitWhileJobsRun(own, scheduled), self._quit_chosen)

    def _quit_chosen(self, choice: str | None) -> None:
        if choice == LEAVE:
            left = self.runner.let_go()
            self.exit(
                ExitCode.OK,
                message=f"Left running: {', '.join(left)}. They finish on their own; "
                "open the console again to follow them in Jobs (3).",
            )
        elif choice is not None:
            self.runner.cancel_all()
            self.runner.exit_when_idle()

    # -- panes and modal screens ------------------------------------------------------------

    def action_pane(self, name: str) -> None:
        if self.may_change_pane():
            self.switch_mode(name)

    def may_change_pane(self) -> bool:
        """Another pane would hide an open wizard (and show it again in the wrong pane)."""
        screen = self.screen
        if isinstance(screen, PaneScreen):
            return True
        if not isinstance(screen, ModalScreen):  # a dialog keeps the keys to itself
            self.notify(
                f"{screen_title(screen)} is open: finish it or close it first (Esc).",
                severity="warning",
                timeout=4,
            )
        return False

    def action_messages(self) -> None:
        if not isinstance(self.screen, MessagesScreen):
            self.push_screen(MessagesScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def key_configured(self) -> bool:
        settings = self.settings
        secret_id = settings.backup_encryption_key_secret_id  # kept in AWS Secrets Manager
        return settings.backup_encryption_key is not None or bool(secret_id)

    def action_offer_key(self) -> None:
        """A new key when none is set; with one set, rotate it."""
        target = self.env_file or self.settings.env_file or default_env_file()
        if self.key_configured():
            previous = bool(self.settings.backup_encryption_key_previous)
            self.push_screen(KeyRotationScreen(target, previous), self._key_rotated)
        else:
            self.push_screen(KeySetupScreen(target), self._key_stored)

    def _key_rotated(self, key_id: str | None) -> None:
        if key_id == RESEAL_ONLY:  # no new key: finish sealing under the current one
            self.notify("Sealing earlier backups again under the current key… (Jobs, 3)")
            self.runner.rekey(self)
        elif key_id:
            self.notify(
                f"New key {key_id} stored, the old one kept for decryption. Sealing earlier "
                "backups again under the new key… (Jobs, 3)",
                timeout=8,
            )
            self.reload_settings()
            self.runner.rekey(self)

    def _key_stored(self, stored: bool | None) -> None:
        if stored:
            self.reload_settings()

    def action_backup_now(self) -> None:
        self.push_screen(BackupChooser(self.settings), self.start_backup)

    def action_restore(self) -> None:
        self.push_screen(RestoreChooser(), self._restore_chosen)

    def action_maintenance(self) -> None:
        """Retention and cleanup, health, verify every backup, drill, prune, catalog rebuild."""
        if not isinstance(self.screen, MaintenanceMenu):
            self.push_screen(MaintenanceMenu(), self._maintenance_chosen)

    def _maintenance_chosen(self, name: str | None) -> None:
        if name:
            run_maintenance(self, name)

    def _restore_chosen(self, kind: str | None) -> None:
        if kind:
            open_restore(self, kind)

    # -- jobs -------------------------------------------------------------------------------

    def start_backup(self, choice: BackupChoice | str | None) -> None:
        if not choice:
            return
        if isinstance(choice, str):
            choice = BackupChoice(choice)
        self.runner.backup(
            choice.kind, postgres_mode=choice.postgres_mode, incremental=choice.incremental
        )
        self.notify(f"Backing up {choice.kind}… (progress in Jobs, 3)", timeout=4)

    def action_test_alert(self) -> None:
        def send() -> None:
            from jarvis_tui.screens.alerts import AlertsScreen

            if isinstance(self.screen, AlertsScreen):
                self.screen.action_test_alert()

        if not self.may_change_pane():
            return
        self.switch_mode("alerts")
        self.call_after_refresh(send)

    def on_catalog_changed(self, message: CatalogChanged) -> None:
        self.catalog_signal.publish(message.reason)

    def on_workspace_failed(self, message: WorkspaceFailed) -> None:
        self.jobs_signal.publish(self.jobs)

    def set_scheduler_note(self, note: str) -> None:
        self.scheduler_note = note
        self.scheduler_signal.publish(note)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            shown = error_text(error) if error is not None else "unknown error"
            self.notify(
                f"{event.worker.name or 'background task'} stopped: {shown}",
                title="Unexpected error",
                severity="error",
                timeout=15,
            )


def make_app(
    env_file: Path | None = None,
    *,
    clock: Clock | None = None,
    disk_space: DiskProbe | None = None,
    poll_seconds: float | None = 1.0,
    host_scheduler: bool = True,
) -> JarvisConsole:
    return JarvisConsole(
        env_file,
        clock=clock,
        disk_space=disk_space,
        poll_seconds=poll_seconds,
        host_scheduler=host_scheduler,
    )


def run_console(env_file: Path | None = None) -> ExitCode:
    result = make_app(env_file).run()
    return result if result is not None else ExitCode.OK
