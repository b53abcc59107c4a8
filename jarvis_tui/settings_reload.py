"""Reloading the settings (`r` in Settings, the palette, a new key).

A reading with errors changes nothing: the console and its scheduler keep their last
good settings and every problem is listed at once. A reading that moves the backups
(repository, catalog, browsing, S3 copies, or takes the key away) applies only once
the operator confirms it; any other applies at once.
"""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from textual import work
from textual.app import App
from textual.signal import Signal

from jarvis_tui.engine_access import (
    EngineAccess,
    Settings,
    SettingsCheck,
    check_settings,
    load_settings,
    moved_destinations,
    register_secrets,
)
from jarvis_tui.screens.confirm import ConfirmScreen
from jarvis_tui.screens.reload_refused import ReloadRefusedScreen

if TYPE_CHECKING:
    from jarvis_tui.scheduler_host import SchedulerHost


def move_question(moved: list[tuple[str, str, str]], running_job: str | None) -> str:
    lines = "\n".join(f"  {what}: {escape(now)} → {escape(then)}" for what, now, then in moved)
    cancelled = (
        f"\nThe scheduled job running now ({escape(running_job)}) is cancelled; it stops "
        "safely, leaving earlier backups as they were."
        if running_job
        else ""
    )
    return (
        f"The settings file now changes where backups go:\n{lines}\n\n"
        "From now on the console reads these backups and its scheduler runs the schedules "
        f"there.{cancelled}\nBack keeps the current settings; none of the file's changes apply."
    )


class SettingsReload(App):
    env_file: Path | None
    settings: Settings
    access: EngineAccess
    scheduler: "SchedulerHost"
    catalog_signal: Signal
    start_logging: Callable[[], object]

    def read_settings(self) -> Settings:
        """The first reading, at start: whatever it finds is shown in Settings."""
        settings = load_settings(env_file=self.env_file, strict=False)
        register_secrets(settings.secret_values())
        return settings

    @work(thread=True, exclusive=True, exit_on_error=False, group="settings")
    def reload_settings(self) -> None:
        """Read the settings again (after an edit of the .env file or a new key)."""
        check = check_settings(self.env_file)
        register_secrets(check.settings.secret_values())
        self.call_from_thread(self._settings_read, check)

    def _settings_read(self, check: SettingsCheck) -> None:
        if check.errors:
            self.push_screen(ReloadRefusedScreen(check, self.settings))
            return
        moved = moved_destinations(self.settings, check.settings)
        if not moved:
            self.use_settings(check)
            return
        job = self.scheduler.current_job
        question = move_question(moved, job[1] if job else None)

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.use_settings(check, moved=True)
            else:
                self.notify("Settings not reloaded: the console kept its settings.", timeout=4)

        screen = ConfirmScreen("Reload settings that move the backups?", question, "Reload")
        self.push_screen(screen, answered)

    def use_settings(self, check: SettingsCheck, *, moved: bool = False) -> None:
        """Apply `check`'s settings. A scheduled job running now is cancelled only when
        they `moved` the backups (the operator was told so); otherwise it finishes first."""
        previous = self.access
        self.settings = check.settings
        self.access = EngineAccess(check.settings)
        self.run_worker(previous.close, thread=True, group="settings")
        self.start_logging()
        job = None if moved else self.scheduler.current_job
        self.scheduler.restart(cancel_running=moved)
        self.catalog_signal.publish("settings reloaded")
        count = len(check.problems)
        problems = f": {count} problem(s), see Settings (5)" if count else ""
        waiting = f"; the schedules take them up once {job[1]} has ended" if job else ""
        self.notify(f"Settings reloaded{problems}{waiting}", timeout=4)
