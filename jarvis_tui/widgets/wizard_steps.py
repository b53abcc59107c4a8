"""The steps every restore wizard shares, from picking a backup to the result."""

from jarvis_tui.widgets.wizard_checks import ConfirmStep, DryRunStep
from jarvis_tui.widgets.wizard_pick import BackupPickStep
from jarvis_tui.widgets.wizard_run import ResultStep, RunStep
from jarvis_tui.widgets.wizard_step import WizardStep


def restore_steps(*choices: WizardStep, pick: WizardStep | None = None) -> list[WizardStep]:
    """A restore wizard's steps: pick a backup (`pick`, or the shared step), the kind's own
    `choices`, the dry run, the confirmation, the run and its result."""
    first = pick or BackupPickStep()
    return [first, *choices, DryRunStep(), ConfirmStep(), RunStep(), ResultStep()]
