"""The complete-system walkthrough: the guide's eight steps, each run or skipped in turn.

The restore steps open the per-source wizards (prefilled the guide's way:
latest backup, original target, replace existing) and record how they ended.
Steps the console cannot do for the operator (stopping services) are marked
done by hand; the S3 download is optional (restores read the best copy) and, run,
pulls the latest full backup into the repository as a job (`pull SET`). `f` runs all of
it as one job, `restore full latest`, once the application is stopped (step 1 done) or
JARVIS_STOP_COMMAND is set.
States live on the app, so leaving and reopening the walkthrough keeps them.
"""

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from jarvis_tui.messages import (
    FullRestoreFailed,
    FullRestoreFinished,
    HealthChecked,
    PullFailed,
    PullFinished,
)
from jarvis_tui.screens.base import ConsoleScreen
from jarvis_tui.screens.confirm import TypedConfirmScreen
from jarvis_tui.screens.restore_chooser import restore_labels
from jarvis_tui.system_health import compare_restored_for, run_health_checks_for


@dataclass(frozen=True)
class GuideStep:
    title: str
    guide: str
    action: str  # "manual", "s3", "health", or the source kind a wizard restores


GUIDE_STEPS = (
    GuideStep("Stop all services", "docker-compose down", "manual"),
    GuideStep(
        "Download backups from S3 (if needed)", "aws s3 sync s3://… /var/backups/jarvis/", "s3"
    ),
    GuideStep("Restore PostgreSQL", "restore-postgres.sh latest --drop-existing", "postgres"),
    GuideStep("Restore Redis", "restore-redis.sh latest --flush", "redis"),
    GuideStep("Restore files", "restore-files.sh latest", "files"),
    GuideStep("Restore environment variables (secrets)", "cp secrets/latest .env", "secrets"),
    GuideStep("Start services", "docker-compose up -d", "manual"),
    GuideStep("Verify restoration", "npm run health:check", "health"),
)

STATE_STYLES = {
    "done": "bold green",
    "succeeded": "bold green",
    "skipped": "dim",
    "failed": "bold red",
    "cancelled": "yellow",
    "unavailable": "dim italic",
    "to do": "",
}


BY_HAND = ("manual", "s3")
FULL_RESTORE = "restore full latest"


def step_available(step: GuideStep, s3_enabled: bool = False) -> bool:
    return step.action != "s3" or s3_enabled


def explain(step: GuideStep, state: str) -> str:
    if step.action == "manual":
        return (
            f"The console cannot do this for you: run `{step.guide}` on the application "
            "host, then press d to mark it done."
        )
    if step.action == "s3" and state == "unavailable":
        return "No S3 copy is configured (S3_ENABLED): the backups are all local. Skip with s."
    if step.action == "s3":
        return (
            "Optional: every restore reads each backup from its best copy, the local "
            "repository first, then S3. Enter downloads the latest full backup into the "
            "repository (`jarvis-tui pull SET`, the guide's `aws s3 sync`); s skips."
        )
    if step.action == "health":
        return (
            "Enter runs the health check against every configured source and compares what "
            "the restore steps wrote with their backups."
        )
    label = restore_labels().get(step.action, step.action)
    return (
        f"Enter opens the {label} wizard with the latest backup, the original target and "
        f"'replace existing' chosen (the guide's `{step.guide}`); you can change any of it."
    )


class SystemRestoreScreen(ConsoleScreen):
    BINDINGS = [
        Binding("enter", "run_step", "Run step"),
        Binding("s", "skip_step", "Skip"),
        Binding("d", "mark_done", "Mark done"),
        Binding("f", "full_restore", "Run all", show=False),
        Binding("u", "undo_step", "Reset", show=False),
        Binding("escape", "leave", "Leave"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(
            Text(" Complete system restore: the guide's eight steps", style="bold"),
            id="wizard-title",
        )
        yield Static(
            "Run or skip each step in order, or press f to run all of them as one job.",
            classes="muted",
        )
        table = DataTable(id="system-steps", cursor_type="row")
        table.add_columns("#", "Step")
        table.add_column("State", key="state")
        yield table
        yield Static("", id="system-explain")
        yield Footer()

    @property
    def states(self) -> dict[int, str]:
        return self.console.walkthrough_states

    def on_mount(self) -> None:
        self.health_report: Text | None = None
        self.pull_step = 1
        self.refresh_steps(self._first_open())
        self.query_one("#system-steps", DataTable).focus()

    def state_of(self, number: int) -> str:
        if number in self.states:
            return self.states[number]
        available = step_available(GUIDE_STEPS[number], bool(self.console.settings.s3_enabled))
        return "to do" if available else "unavailable"

    def refresh_steps(self, cursor: int | None = None) -> None:
        table = self.query_one("#system-steps", DataTable)
        keep = table.cursor_row if cursor is None else cursor
        states = [self.state_of(number) for number in range(len(GUIDE_STEPS))]
        # Widened before the cells are drawn: the table measures new cells only when idle
        # and keeps what it drew before at the old width ("succeeded: jarvis_db" cut).
        column = table.columns["state"]
        column.content_width = max(column.content_width, *(len(state) for state in states))
        for number, (step, state) in enumerate(zip(GUIDE_STEPS, states, strict=True)):
            cell = Text(state, style=STATE_STYLES.get(state.split(":")[0], ""))
            if str(number) in table.rows:
                table.update_cell(str(number), "state", cell)
            else:
                table.add_row(str(number + 1), step.title, cell, key=str(number))
        table.move_cursor(row=keep)
        self._explain(table.cursor_row)

    def _first_open(self) -> int:
        for number in range(len(GUIDE_STEPS)):
            if self.state_of(number) in ("to do", "unavailable", "failed", "cancelled"):
                return number
        return 0

    @on(DataTable.RowHighlighted, "#system-steps")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._explain(event.cursor_row)

    @on(DataTable.RowSelected, "#system-steps")
    def _selected(self) -> None:
        self.action_run_step()

    def _explain(self, number: int) -> None:
        step = GUIDE_STEPS[number]
        if step.action == "health" and self.health_report is not None:
            self.query_one("#system-explain", Static).update(self.health_report)
            return
        self.query_one("#system-explain", Static).update(
            Text.assemble(
                (f"{number + 1}. {step.title}\n", "bold"), explain(step, self.state_of(number))
            )
        )

    def _current(self) -> int:
        return self.query_one("#system-steps", DataTable).cursor_row

    def _set(self, number: int, state: str) -> None:
        """Record a step's state and move on to the next step."""
        self.states[number] = state
        self.refresh_steps(min(number + 1, len(GUIDE_STEPS) - 1))

    def action_run_step(self) -> None:
        number = self._current()
        step = GUIDE_STEPS[number]
        state = self.state_of(number)
        if state == "unavailable":
            self.notify(explain(step, state), severity="warning", timeout=6)
            return
        if step.action == "s3":
            self.query_one("#system-explain", Static).update("Downloading from S3…")
            self.pull_latest_full(number)
            return
        if step.action == "manual":
            self.notify("Run it on the application host, then press d.", timeout=5)
            return
        if step.action == "health":
            self.query_one("#system-explain", Static).update("Running the health checks…")
            self.check_health(number)
            return
        self._open_wizard(number, step.action)

    @work(thread=True, exclusive=True, exit_on_error=False, group="health")
    def check_health(self, number: int) -> None:
        try:
            ok, lines = run_health_checks_for(self.console)
        except Exception as error:  # a check that cannot run is a failed step, said calmly
            ok, lines = False, [(False, f"the health checks could not run: {error}")]
        restored = [part for _, part in sorted(self.console.walkthrough_restored.items())]
        if restored:  # what the restore steps wrote, compared with their backups
            compared = compare_restored_for(self.console, restored)
            ok = ok and all(matched for matched, _ in compared)
            lines += compared
        self.post_message(HealthChecked(number, ok, lines))

    @work(thread=True, exclusive=True, exit_on_error=False, group="pull")
    def pull_latest_full(self, number: int) -> None:
        self.pull_step = number
        try:
            backup_set = self.console.access.catalog().get_backup_set("latest", "full")
        except Exception as error:  # no full backup yet: said, and nothing starts
            self.post_message(PullFailed(str(error)))
            return
        self.app.call_from_thread(self.console.runner.pull, backup_set.id, self)

    def on_pull_finished(self, message: PullFinished) -> None:
        failed = bool(message.problems)
        self.notify(
            "\n".join([message.line, *message.problems]),
            title="Pull incomplete" if failed else "Pulled",
            severity="error" if failed else "information",
            timeout=10,
        )
        self._set(self.pull_step, "failed" if failed else "succeeded")

    def on_pull_failed(self, message: PullFailed) -> None:
        self.notify(message.error, title="Pull failed", severity="error", timeout=10)
        self._set(self.pull_step, "failed")

    def on_health_checked(self, message: HealthChecked) -> None:
        text = Text()
        text.append("Health checks\n", style="bold")
        for ok, line in message.lines:
            text.append("  ✓ " if ok else "  ✗ ", style="green" if ok else "bold red")
            text.append(f"{line}\n")
        self.health_report = text
        self._set(message.step, "succeeded" if message.ok else "failed")

    def _open_wizard(self, number: int, kind: str) -> None:
        from jarvis_tui.screens.restore_chooser import guide_wizard

        wizard = guide_wizard(kind)

        def ended(outcome: str | None) -> None:
            if outcome == "succeeded" and wizard.report is not None and wizard.reference:
                self.console.walkthrough_restored[number] = (kind, wizard.reference, wizard.report)
            if outcome:
                self._set(number, wizard.step_state() or outcome)

        self.app.push_screen(wizard, ended)

    def action_skip_step(self) -> None:
        self._set(self._current(), "skipped")

    def action_mark_done(self) -> None:
        number = self._current()
        if GUIDE_STEPS[number].action != "manual":
            self.notify("Only the by-hand steps are marked done; run the others.", timeout=4)
            return
        self._set(number, "done")

    def action_full_restore(self) -> None:
        """Every step as one job, once the application is known to be stopped."""
        stopped = self.state_of(0) == "done"
        if not (stopped or self.console.settings.jarvis_stop_command):
            self.notify(
                "Stop the application first (step 1, then d), or set JARVIS_STOP_COMMAND.",
                severity="warning",
                timeout=6,
            )
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.console.runner.restore_full("latest", stopped, self)
                self.notify(f"Running `{FULL_RESTORE}`; its steps are in Jobs.", timeout=5)

        consequence = (
            "Every artifact of the latest full backup is authenticated first; then the "
            "database is swapped, Redis flushed and loaded, files, secrets and configuration "
            "put back where they were, compared with the backup, and the health checks run."
        )
        screen = TypedConfirmScreen("Restore the whole system", consequence, "restore", "Restore")
        self.app.push_screen(screen, confirmed)

    def on_full_restore_finished(self, message: FullRestoreFinished) -> None:
        text = Text()
        text.append(f"restore full {message.report.set_id}: the system is restored\n", style="bold")
        for step in message.report.steps:
            text.append(f"  {step.title}: {step.state}\n")
        self.health_report = text
        started = all(step.state == "done" for step in message.report.steps)
        for number, step in enumerate(GUIDE_STEPS):
            if step.action in BY_HAND:
                self.states.setdefault(number, "done" if step.action == "manual" else "skipped")
            else:
                self.states[number] = "succeeded"
        if not started:  # JARVIS_START_COMMAND is not set: starting is the operator's
            self.states[6] = "to do"
        self.refresh_steps(len(GUIDE_STEPS) - 1)
        self.notify("The system is restored; step 8 shows every step.", timeout=8)

    def on_full_restore_failed(self, message: FullRestoreFailed) -> None:
        title = "Full restore cancelled" if message.cancelled else "Full restore stopped"
        self.notify(message.error, title=title, severity="error", timeout=20)

    def action_undo_step(self) -> None:
        self.states.pop(self._current(), None)
        self.console.walkthrough_restored.pop(self._current(), None)
        self.refresh_steps()

    def action_leave(self) -> None:
        self.dismiss(None)
