"""`Restore`: pick what to restore (one source's wizard, or the whole system)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from jarvis_tui.dashboard_view import source_labels

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole
    from jarvis_tui.screens.wizard import RestoreWizard

SYSTEM = "system"


def _postgres(set_id: str | None, guide_defaults: bool) -> Screen:
    from jarvis_tui.screens.restore_postgres import PostgresPlan, PostgresRestoreWizard

    plan = PostgresPlan(new_database=False, drop_existing=True) if guide_defaults else None
    return PostgresRestoreWizard(set_id, plan=plan)


def _redis(set_id: str | None, guide_defaults: bool) -> Screen:
    from jarvis_tui.screens.restore_redis import RedisPlan, RedisRestoreWizard

    return RedisRestoreWizard(set_id, plan=RedisPlan(flush=True) if guide_defaults else None)


def _files(set_id: str | None, guide_defaults: bool) -> Screen:
    from jarvis_tui.screens.restore_files import FilesPlan, FilesRestoreWizard

    plan = FilesPlan(to_folder=False, overwrite="if-newer") if guide_defaults else None
    return FilesRestoreWizard(set_id, plan=plan)


def _secrets(set_id: str | None, guide_defaults: bool) -> Screen:
    from jarvis_tui.screens.restore_secrets import SecretsPlan, SecretsRestoreWizard

    return SecretsRestoreWizard(set_id, plan=SecretsPlan(force=True) if guide_defaults else None)


def _config(set_id: str | None, guide_defaults: bool) -> Screen:
    from jarvis_tui.screens.restore_config import ConfigPlan, ConfigRestoreWizard

    plan = ConfigPlan(to_folder=False, replace=True) if guide_defaults else None
    return ConfigRestoreWizard(set_id, plan=plan)


@dataclass(frozen=True)
class Wizard:
    open: Callable[[str | None, bool], Screen]  # (set to preselect, start from the guide's way)
    command: str  # its command palette entry
    help: str


# The sources the console has a restore wizard for; their labels and their order come
# from the engine's registry of sources.
WIZARDS: dict[str, Wizard] = {
    "postgres": Wizard(
        _postgres, "Restore PostgreSQL", "the guide's restore-postgres.sh, step by step"
    ),
    "redis": Wizard(_redis, "Restore Redis", "the guide's restore-redis.sh, step by step"),
    "files": Wizard(_files, "Restore files", "the guide's restore-files.sh, step by step"),
    "secrets": Wizard(_secrets, "Restore secrets", "put back .env and credentials"),
    "config": Wizard(
        _config, "Restore configuration", "configuration files, or into a new folder first"
    ),
}


def restore_labels() -> dict[str, str]:
    """kind: label of every source with a wizard, in the registry's order."""
    return {kind: label for kind, label in source_labels().items() if kind in WIZARDS}


def open_restore(
    app: "JarvisConsole",
    kind: str,
    set_id: str | None = None,
    done: Callable[[str | None], None] | None = None,
) -> None:
    """Push the wizard for `kind` (or the walkthrough)."""
    if kind == SYSTEM:
        from jarvis_tui.screens.system_restore import SystemRestoreScreen

        app.push_screen(SystemRestoreScreen())
        return
    app.push_screen(WIZARDS[kind].open(set_id, False), done)


def guide_wizard(kind: str) -> "RestoreWizard":
    """The wizard for `kind` prefilled as the guide's complete-system restore does it."""
    return cast("RestoreWizard", WIZARDS[kind].open(None, True))


class RestoreChooser(ModalScreen[str | None]):
    BINDINGS = [("escape", "dismiss(None)", "Back")]

    def compose(self) -> ComposeResult:
        options = [Option(label, id=kind) for kind, label in restore_labels().items()]
        options.append(Option("Complete system: the guide's eight steps", id=SYSTEM))
        with Vertical(classes="dialog"):
            yield Static("What do you want to restore?", classes="dialog-title")
            yield OptionList(*options, id="restore-kinds")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
