"""The frame every restore wizard shares: a trail of steps, one shown, Back and Next.

A kind of data (PostgreSQL, Redis, files, secrets) subclasses `RestoreWizard`
with its own target and options steps and the few facts the shared steps ask
for: the engine options, whether the restore destroys anything, the name to
type, and what to do afterwards. The wizard dismisses with the outcome
("succeeded", "failed", "cancelled", or None when left early), which the
complete-system walkthrough records.
"""

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, ContentSwitcher, Footer, Static

from jarvis_tui.messages import (
    DryRunFailed,
    DryRunFinished,
    JobUpdated,
    RestoreFailed,
    RestoreFinished,
)
from jarvis_tui.restorable import RestorableSet
from jarvis_tui.restore_access import RestoreReport
from jarvis_tui.screens.base import ConsoleScreen
from jarvis_tui.widgets.wizard_step import StepTrail, WizardStep


class RestoreWizard(ConsoleScreen):
    KIND = ""
    TITLE = "Restore"
    PLAN: Callable[[], Any]  # the kind's choices, a dataclass with its defaults

    BINDINGS = [
        Binding("ctrl+n", "next", "Next"),
        Binding("ctrl+b", "back", "Back"),
        Binding("escape", "leave", "Leave wizard"),
    ]

    def __init__(self, preselected_set: str | None = None, *, plan: Any = None):
        super().__init__()
        self.plan = plan if plan is not None else self.PLAN()
        self.preselected_set = preselected_set
        self.reference: str | None = None
        self.chosen: RestorableSet | None = None
        self.reference_metadata: dict[str, Any] = {}
        self.dry_run_report: RestoreReport | None = None
        self.report: RestoreReport | None = None
        self.failure: str | None = None
        self.outcome: str | None = None
        self.job_id: int | None = None
        self.running = False
        self.steps = self.make_steps()
        self.index = 0

    # -- what a kind of data provides -------------------------------------------------------

    def make_steps(self) -> list[WizardStep]:
        raise NotImplementedError

    def engine_options(self, dry_run: bool) -> Any:
        raise NotImplementedError

    def target_name(self) -> str:
        raise NotImplementedError

    def destructive(self) -> bool:
        raise NotImplementedError

    def consequence(self) -> str:
        """One paragraph: what the real run will change."""
        raise NotImplementedError

    def next_steps(self) -> list[str]:
        """What the operator should do after the restore (or after it failed)."""
        raise NotImplementedError

    def describe_backup(self, metadata: dict[str, Any]) -> str:
        """A few words on what a backup holds, for the backup list."""
        return str(metadata.get("mode", ""))

    def moment_note(self) -> str:
        """How a moment in time can be picked instead of a backup, where that exists."""
        return ""

    def written(self) -> str | None:
        """After a success, what the run wrote ("jarvis_db replaced"), where that matters."""
        return None

    def step_state(self) -> str | None:
        """The walkthrough's state for this wizard: its outcome, naming what a success wrote."""
        written = self.written() if self.outcome == "succeeded" else None
        return f"{self.outcome}: {written}" if written else self.outcome

    def other_steps(self) -> list[WizardStep]:
        """Steps of another way through the wizard (`use_route`), composed beside these."""
        return []

    def typed_name(self) -> str | None:
        """What the operator types to confirm; None when Next alone confirms."""
        return self.target_name() if self.destructive() else None

    def confirm_warning(self) -> str:
        """The words before "Type NAME to confirm"."""
        return "This replaces data. "

    def running_words(self) -> str:
        """What the run step says while the restore runs."""
        return f"Restoring {self.reference} into {self.target_name()}…"

    def failure_words(self, error: str) -> str:
        """The engine's failure in the wizard's words (a line may name a command-line flag)."""
        return error

    def refusal_words(self, report: RestoreReport) -> str:
        """Why the dry run would be refused, in the wizard's words: the engine's line names
        the command line's flags, the operator here has the wizard's choices."""
        return "The engine would refuse this restore: go back (ctrl+b) and change the choices."

    # -- frame ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text(f" {self.TITLE}", style="bold"), id="wizard-title")
        yield StepTrail([step.TITLE for step in self.steps])
        with ContentSwitcher(initial="step-0", id="wizard-steps"):
            for number, step in enumerate([*self.steps, *self.other_steps()]):
                step.id = f"step-{number}"
                yield step
        yield Static("", id="wizard-problem")
        with Horizontal(id="wizard-buttons"):
            yield Button("◀ Back", id="back", compact=True)
            yield Button("Next ▶", id="next", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.show_step(0)

    def use_route(self, steps: list[WizardStep]) -> None:
        """Go on through `steps` (each composed: from make_steps or other_steps); the trail
        shows their titles."""
        self.steps = steps
        trail = self.query_one(StepTrail)
        trail.titles = [step.TITLE for step in steps]
        trail.refresh()

    def show_step(self, index: int) -> None:
        self.index = index
        step = self.steps[index]
        self.query_one(ContentSwitcher).current = step.id
        trail = self.query_one(StepTrail)
        trail.current = index
        trail.refresh()
        self.query_one("#wizard-problem", Static).update("")
        self.query_one("#next", Button).label = step.next_label
        step.enter()
        self.refresh_buttons()

    def refresh_buttons(self) -> None:
        step = self.steps[self.index]
        can_go_back = step.can_go_back or self._may_run_again()
        self.query_one("#back", Button).disabled = (
            self.index == 0 or not can_go_back or self.running
        )
        blocked = step.blocked()
        self.query_one("#next", Button).disabled = self.running or blocked is not None
        if blocked is not None:
            self.say(blocked)
            self.query_one("#back", Button).focus()

    def say(self, problem: str) -> None:
        self.query_one("#wizard-problem", Static).update(Text(problem, style="bold red"))

    def action_next(self) -> None:
        if self.running:
            return
        step = self.steps[self.index]
        problem = step.blocked() or step.problem()
        if problem:
            self.say(problem)
            return
        step.leave()
        if self.index == len(self.steps) - 1:
            self.dismiss(self.outcome)
            return
        self.show_step(self.index + 1)

    def action_back(self) -> None:
        step = self.steps[self.index]
        if self.running:
            return
        if self._may_run_again():
            self._back_to_choices()
        elif self.index > 0 and step.can_go_back:
            self.show_step(self.index - 1)

    def _may_run_again(self) -> bool:
        """A run that changed nothing (failed or cancelled) may be tried again differently."""
        return self.outcome in ("failed", "cancelled")

    def _back_to_choices(self) -> None:
        """After a failed run: forget it and show the kind's last choice step (Options)."""
        from jarvis_tui.widgets.wizard_steps import DryRunStep, RunStep

        for step in self._steps_of(RunStep):
            step.reset()
        self.report = self.failure = self.outcome = self.job_id = None
        self.dry_run_report = None
        self.show_step(self.steps.index(self._steps_of(DryRunStep)[0]) - 1)

    def action_leave(self) -> None:
        if self.running:
            self.notify(
                f"The restore goes on as job {self.job_id}; follow it in Jobs (3).", timeout=6
            )
        self.dismiss(self.outcome)

    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    # -- engine results, handed to the step that waits for them ---------------------------

    def _steps_of(self, kind: type) -> list:
        return [step for step in self.steps if isinstance(step, kind)]

    def on_dry_run_finished(self, message: DryRunFinished) -> None:
        from jarvis_tui.widgets.wizard_steps import DryRunStep

        self.dry_run_report = message.report
        for step in self._steps_of(DryRunStep):
            step.finished(message.report, None)
        self.refresh_buttons()

    def on_dry_run_failed(self, message: DryRunFailed) -> None:
        from jarvis_tui.widgets.wizard_steps import DryRunStep

        self.dry_run_report = None
        for step in self._steps_of(DryRunStep):
            step.finished(None, self.failure_words(message.error))
        self.refresh_buttons()

    def on_job_updated(self, message: JobUpdated) -> None:
        from jarvis_tui.widgets.wizard_steps import RunStep

        for step in self._steps_of(RunStep):
            step.job_updated(message.update)

    def on_restore_finished(self, message: RestoreFinished) -> None:
        self._restore_ended(message.report, None, "succeeded")

    def on_restore_failed(self, message: RestoreFailed) -> None:
        outcome = "cancelled" if message.cancelled else "failed"
        self._restore_ended(None, self.failure_words(message.error), outcome)

    def _restore_ended(self, report: RestoreReport | None, error: str | None, outcome: str) -> None:
        from jarvis_tui.widgets.wizard_steps import RunStep

        self.running = False
        self.report, self.failure, self.outcome = report, error, outcome
        for step in self._steps_of(RunStep):
            step.ended(outcome)
        self.refresh_buttons()
        self.query_one("#next").focus()
