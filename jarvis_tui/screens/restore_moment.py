"""The PostgreSQL wizard's other way: the whole cluster restored to a moment in time (a
base backup laid out into a new data folder, then archived WAL up to the target), as
`restore postgres --pitr` does. The engine picks the newest base backup that ended before
the target; the window shown is `jarvis-tui pitr timeline`'s."""

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Checkbox, Input, RadioButton, RadioSet, Static

from jarvis_tui.pitr_access import (
    ACTIONS,
    DEFAULT_ACTION,
    KINDS,
    TARGET_HINTS,
    MomentWindow,
    shown_time,
    target_problem,
)
from jarvis_tui.widgets.marked_toggles import MarkedCheckbox, MarkedRadioButton
from jarvis_tui.widgets.wizard_pick import BackupPickStep
from jarvis_tui.widgets.wizard_step import WizardStep

if TYPE_CHECKING:
    from jarvis_tui.screens.restore_postgres import PostgresRestoreWizard

KIND_LABELS = {
    "time": "time",
    "lsn": "LSN",
    "name": "restore point",
    "xid": "transaction",
    "immediate": "immediate",
}
ACTION_NOTES = {
    "promote": "promote: once there, the copy becomes a server one can write to.",
    "pause": "pause: it stays read-only at the target, to look before promoting it.",
    "shutdown": "shutdown: it stops at the target; nothing is written after it.",
}
HORIZONTAL_RADIOS = """
MomentStep RadioSet { layout: horizontal; width: 100%; }
MomentStep RadioSet > RadioButton { width: auto; margin-right: 1; }
"""


class PostgresPickStep(BackupPickStep):
    """The backups to restore into a database, and below them the moment in time."""

    DEFAULT_CSS = """
    #pick-moment-row { height: auto; }
    #pick-moment { margin-right: 1; }
    #pick-moment-note { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield from super().compose()
        with Horizontal(id="pick-moment-row"):
            yield Button("A moment in time ▶", id="pick-moment", compact=True, disabled=True)
            yield Static("Reading the archive's window…", id="pick-moment-note", classes="muted")

    @property
    def postgres(self) -> "PostgresRestoreWizard":
        return self.wizard  # type: ignore[return-value]

    def enter(self) -> None:
        self.postgres.back_to_backups()
        super().enter()

    def show_window(self, window: MomentWindow) -> None:
        note = self.query_one("#pick-moment-note", Static)
        self.query_one("#pick-moment", Button).disabled = window.unavailable is not None
        if window.unavailable is not None:
            note.update(Text(window.unavailable, style="yellow"))
            return
        first, last = window.spans[0], window.spans[-1]
        note.update(
            "The whole cluster as it was at a moment, into a new data folder (point-in-time "
            f"recovery): from {shown_time(first.earliest_time)} to {shown_time(last.latest_time)}."
        )

    @on(Button.Pressed, "#pick-moment")
    def _moment_chosen(self) -> None:
        self.postgres.choose_moment()


class MomentStep(WizardStep):
    TITLE = "Moment"
    DEFAULT_CSS = HORIZONTAL_RADIOS

    def compose(self) -> ComposeResult:
        yield Static("Recoverable window (as `jarvis-tui pitr timeline` shows it):")
        yield Static("Reading the archive…", id="moment-window", classes="step-intro")
        yield Static("Restore to")
        with RadioSet(id="moment-kind", compact=True):
            for kind in KINDS:
                yield MarkedRadioButton(
                    KIND_LABELS[kind], id=f"moment-{kind}", value=kind == "time"
                )
        with Horizontal(classes="field"):
            yield Static("Target ", classes="label")
            yield Input(compact=True, id="moment-value")
        yield Static("", id="moment-hint", classes="muted")
        yield Static("Once there")
        with RadioSet(id="moment-action", compact=True):
            for action in ACTIONS:
                yield MarkedRadioButton(
                    action, id=f"moment-then-{action}", value=action == DEFAULT_ACTION
                )
        yield Static("", id="moment-action-note", classes="muted")

    @property
    def postgres(self) -> "PostgresRestoreWizard":
        return self.wizard  # type: ignore[return-value]

    def enter(self) -> None:
        plan = self.postgres.plan
        self.query_one(f"#moment-{plan.target_kind}", RadioButton).value = True
        self.query_one(f"#moment-then-{plan.target_action}", RadioButton).value = True
        self.query_one("#moment-value", Input).value = plan.target_value
        if self.postgres.window is not None:
            self.show_window(self.postgres.window)
        self._explain()
        self.query_one("#moment-value", Input).focus()

    def show_window(self, window: MomentWindow) -> None:
        shown = Text("\n".join(window.lines))
        if window.unavailable:
            shown.append(("\n" if window.lines else "") + window.unavailable, style="yellow")
        self.query_one("#moment-window", Static).update(shown)
        if window.spans:
            self.query_one("#moment-value", Input).placeholder = shown_time(
                window.spans[-1].latest_time
            )

    @on(RadioSet.Changed)
    def _changed(self) -> None:
        self._explain()

    @on(Input.Submitted, "#moment-value")
    def _submitted(self) -> None:
        self.wizard.action_next()

    def _chosen(self, radio_set: str, prefix: str) -> str:
        """The button switched on (read from the buttons: the set learns of it later)."""
        buttons = self.query_one(radio_set, RadioSet).query(RadioButton)
        on = next((b for b in buttons if b.value), buttons.first())
        return str(on.id).removeprefix(prefix)

    def _kind(self) -> str:
        return self._chosen("#moment-kind", "moment-")

    def _action(self) -> str:
        return self._chosen("#moment-action", "moment-then-")

    def _explain(self) -> None:
        kind = self._kind()
        self.query_one("#moment-value", Input).disabled = kind == "immediate"
        hint = TARGET_HINTS[kind]
        if kind in ("name", "xid"):
            hint += "; the newest base backup is used, so it must be older than the target"
        self.query_one("#moment-hint", Static).update(hint)
        self.query_one("#moment-action-note", Static).update(ACTION_NOTES[self._action()])

    def problem(self) -> str | None:
        value = self.query_one("#moment-value", Input).value
        return target_problem(self._kind(), value, self._action(), self.postgres.window)

    def leave(self) -> None:
        plan = self.postgres.plan
        plan.target_kind = self._kind()
        plan.target_action = self._action()
        value = self.query_one("#moment-value", Input).value.strip()
        plan.target_value = "" if plan.target_kind == "immediate" else value


class DataFolderStep(WizardStep):
    TITLE = "Data folder"

    def compose(self) -> ComposeResult:
        yield Static(
            "Into which new (or empty) data folder? Nothing existing is touched: a folder "
            "with files, or one a server runs on, is refused.",
            classes="step-intro",
        )
        with Horizontal(classes="field"):
            yield Static("Data folder ", classes="label")
            yield Input(compact=True, id="moment-folder")
        yield Static(
            "archive_mode is off in the copy, so it never writes into this archive.",
            classes="muted",
        )
        yield MarkedCheckbox(
            compact=True,
            label="Start PostgreSQL on it and wait until recovery reached the target",
            id="moment-start",
        )
        with Horizontal(classes="field"):
            yield Static("On port ", classes="label")
            yield Input(compact=True, id="moment-port", type="integer")
        yield Static(
            "It runs as the folder's owner (never root), on a port of its own beside the live "
            "server; unticked, you start it yourself afterwards.",
            classes="muted",
        )

    def enter(self) -> None:
        plan = self.wizard.plan
        if not plan.pgdata:
            stamp = self.wizard.console.clock().strftime("%Y%m%d_%H%M%S")
            plan.pgdata = str(Path.cwd() / "restored" / f"pgdata_{stamp}")
        field = self.query_one("#moment-folder", Input)
        field.value = plan.pgdata
        self.query_one("#moment-start", Checkbox).value = plan.start
        self.query_one("#moment-port", Input).value = plan.port
        self._explain()
        field.focus()

    @on(Checkbox.Changed, "#moment-start")
    def _explain(self) -> None:
        self.query_one("#moment-port", Input).disabled = not self._start()

    def _start(self) -> bool:
        return self.query_one("#moment-start", Checkbox).value

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.wizard.action_next()

    def problem(self) -> str | None:
        typed = self.query_one("#moment-folder", Input).value.strip()
        if not typed:
            return "Name the data folder to restore into."
        folder = Path(typed).expanduser()
        try:
            if folder.exists() and not folder.is_dir():
                return f"{folder} is a file: name a new (or empty) data folder."
            if folder.is_dir() and any(folder.iterdir()):
                return f"{folder} is not empty: name a new (or empty) data folder."
        except OSError as error:
            return f"{folder} cannot be read ({error.strerror}): name another folder."
        port = self.query_one("#moment-port", Input).value.strip()
        if self._start() and not (port.isdigit() and 0 < int(port) < 65536):
            return f"Port {port or 'nothing'}: give a free port for the restored server, e.g. 5433."
        return None

    def leave(self) -> None:
        plan = self.wizard.plan
        typed = self.query_one("#moment-folder", Input).value.strip()
        plan.pgdata = str(Path(typed).expanduser().absolute())
        plan.start = self._start()
        plan.port = self.query_one("#moment-port", Input).value.strip()
