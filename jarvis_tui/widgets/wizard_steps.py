"""The steps every restore wizard shares, from picking a backup to the result."""

from jarvis_tui.widgets.wizard_checks import ConfirmStep, DryRunStep
from jarvis_tui.widgets.wizard_pick import BackupPickStep
from jarvis_tui.widgets.wizard_run import ResultStep, RunStep

__all__ = ["BackupPickStep", "ConfirmStep", "DryRunStep", "ResultStep", "RunStep"]
