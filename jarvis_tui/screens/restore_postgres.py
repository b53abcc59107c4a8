"""The PostgreSQL restore wizard: the guide's restore-postgres.sh, one step at a time."""

import os
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import work

from jarvis_tui.formatting import count
from jarvis_tui.messages import MomentWindowLoaded
from jarvis_tui.pitr_access import DEFAULT_ACTION, LATEST, MomentWindow, load_window
from jarvis_tui.restore_access import PostgresRestoreOptions
from jarvis_tui.screens.restore_moment import DataFolderStep, MomentStep, PostgresPickStep
from jarvis_tui.screens.restore_moment_words import (
    folder_name,
    moment_consequence,
    moment_next_steps,
    moment_options,
    plan_target,
)
from jarvis_tui.screens.restore_postgres_steps import PostgresOptionsStep, PostgresTargetStep
from jarvis_tui.screens.wizard import RestoreWizard
from jarvis_tui.widgets.wizard_step import WizardStep
from jarvis_tui.widgets.wizard_steps import restore_steps

START_FLAG = "--start: "


@dataclass
class PostgresPlan:
    new_database: bool = True
    new_name: str = ""
    drop_existing: bool = False
    discard_previous: bool = False
    with_globals: bool = False
    tables: tuple[str, ...] = ()
    jobs: int = field(default_factory=lambda: max(1, len(os.sched_getaffinity(0))))
    # A moment in time instead of a backup: the whole cluster into a new data folder.
    moment: bool = False
    target_kind: str = "time"
    target_value: str = ""
    target_action: str = DEFAULT_ACTION
    pgdata: str = ""
    start: bool = False  # start the restored server and wait for the target
    port: str = "5433"


class PostgresRestoreWizard(RestoreWizard):
    KIND = "postgres"
    TITLE = "Restore PostgreSQL"
    PLAN = PostgresPlan

    def make_steps(self) -> list[WizardStep]:
        steps = restore_steps(PostgresTargetStep(), PostgresOptionsStep(), pick=PostgresPickStep())
        self.window: MomentWindow | None = None
        self.backup_steps = steps
        self.moment_steps = [steps[0], MomentStep(), DataFolderStep(), *steps[3:]]
        return steps

    def other_steps(self) -> list[WizardStep]:
        return self.moment_steps[1:3]

    def on_mount(self) -> None:
        super().on_mount()
        self.load_window()

    @work(thread=True, exclusive=True, exit_on_error=False, group="moment-window")
    def load_window(self) -> None:
        try:
            window = load_window(self.console.access)
        except Exception as error:
            why = str(error) or type(error).__name__
            window = MomentWindow(
                unavailable=f"Unavailable: the archive could not be read ({why})."
            )
        self.post_message(MomentWindowLoaded(window))

    def on_moment_window_loaded(self, message: MomentWindowLoaded) -> None:
        self.window = message.window
        for step in self.moment_steps:
            if isinstance(step, PostgresPickStep | MomentStep):
                step.show_window(message.window)

    def choose_moment(self) -> None:
        """The moment-in-time way: the engine picks the base backup for the target."""
        if self.window is None or self.window.unavailable is not None or self.running:
            return
        self.plan.moment = True
        self.reference, self.chosen, self.reference_metadata = LATEST, None, {}
        self.use_route(self.moment_steps)
        self.show_step(1)
        self.load_window()  # the window grows while the wizard is open

    def back_to_backups(self) -> None:
        self.plan.moment = False
        self.use_route(self.backup_steps)

    def source_database(self) -> str:
        return str(
            self.reference_metadata.get("database")
            or self.console.settings.postgres_db
            or "postgres"
        )

    def target_name(self) -> str:
        if self.plan.moment:
            return self.plan.pgdata
        return self.plan.new_name if self.plan.new_database else self.source_database()

    def engine_options(self, dry_run: bool) -> PostgresRestoreOptions:
        plan = self.plan
        if plan.moment:
            return moment_options(plan, self.console.env_file, dry_run)
        return PostgresRestoreOptions(
            dry_run=dry_run,
            drop_existing=plan.drop_existing,
            discard_previous=plan.discard_previous,
            target_db=self.target_name(),
            tables=plan.tables,
            jobs=plan.jobs,
            with_globals=plan.with_globals,
        )

    def destructive(self) -> bool:
        return self.plan.drop_existing and not self.plan.moment

    def typed_name(self) -> str | None:
        """A moment in time writes a whole cluster: its folder's name is typed, as a
        replacing restore's database name is."""
        return folder_name(self.plan) if self.plan.moment else super().typed_name()

    def confirm_warning(self) -> str:
        if self.plan.moment:
            return "This writes the whole cluster into a new data folder. "
        return super().confirm_warning()

    def failure_words(self, error: str) -> str:
        """`restore --pitr --start`'s refusals name the flag; here it is the tick box."""
        if self.plan.moment and error.startswith(START_FLAG):
            return "Starting the restored server: " + error.removeprefix(START_FLAG)
        return error

    def running_words(self) -> str:
        if self.plan.moment:
            target = plan_target(self.plan, None).describe()
            return f"Restoring the cluster to {target} into {self.plan.pgdata}…"
        return super().running_words()

    def consequence(self) -> Text:
        plan = self.plan
        if plan.moment:
            return moment_consequence(plan, plan_target(plan, None))
        what = f"{len(plan.tables)} table(s)" if plan.tables else "the whole database"
        text = Text.assemble(
            "Restore ",
            (what, "bold"),
            " from ",
            (str(self.reference), "bold"),
            " into ",
            (self.target_name(), "bold"),
            ".\n",
        )
        if plan.drop_existing and not plan.tables:
            keep = (
                "dropped"
                if plan.discard_previous
                else f"kept as {self.target_name()}_pre_restore_<time>"
            )
            text.append(
                f"If {self.target_name()} holds tables it is replaced by the checked copy; the "
                f"previous database is {keep}.\n"
            )
        elif plan.drop_existing:
            text.append("Tables that already hold rows are replaced, in one transaction.\n")
        else:
            text.append("Nothing existing is replaced: a non-empty target is refused.\n")
        if plan.with_globals:
            text.append("Missing roles and tablespaces are created; existing ones are kept.\n")
        return text

    def next_steps(self) -> list[str]:
        if self.plan.moment:
            return moment_next_steps(self.plan, plan_target(self.plan, None), self.outcome)
        target = self.target_name()
        if self.outcome != "succeeded":
            return [
                f"{target} was left as it was; read the job log in Jobs (3) for the cause.",
                "Fix the cause (server reachable? enough space? right key?) and run the "
                "wizard again; the dry run shows what would happen.",
            ]
        steps = []
        if self.plan.new_database:
            steps.append(
                f"Point the application at {target} (POSTGRES_DB={target}) or compare it with "
                "the live database before switching."
            )
        else:
            steps.append("Restart the services that use the database so they reconnect.")
        if self.plan.drop_existing and not self.plan.discard_previous and not self.plan.tables:
            steps.append(
                f"Drop {target}_pre_restore_<time> once you are satisfied (the result above "
                "names it)."
            )
        steps.append("Make a fresh backup (b) so the restored state has a good backup too.")
        return steps

    def describe_backup(self, metadata: dict[str, Any]) -> str:
        parts = [str(metadata.get("database") or "?"), str(metadata.get("mode") or "")]
        if metadata.get("table_count") is not None:
            parts.append(count(metadata["table_count"], "table"))
        if metadata.get("total_rows") is not None:
            parts.append(count(metadata["total_rows"], "row"))
        return " · ".join(p for p in parts if p)

    def written(self) -> str:
        if self.plan.moment:
            return f"recovering into {self.plan.pgdata}"
        target = self.target_name()
        replaced = not self.plan.new_database and self.plan.drop_existing
        return f"{target} replaced" if replaced else f"restored into {target}"
