"""A restore's dry run as the API answers it: what would be written where, and what
would stop it; and its plan written into its job's log, where a caller who was answered
202 (the dry run outlasted the wait) finds it."""

from typing import Any

from pydantic import BaseModel

from engines.plumbing.redaction import redact
from jarvis_tui.api.context import ApiContext
from jarvis_tui.api.job_start import JobAccepted
from jarvis_tui.job_process import Outcome


class PlanStep(BaseModel):
    title: str
    state: str  # would, done, by hand
    lines: list[str]


class DryRunReport(BaseModel):
    """A dry run's plan: what the restore would write where, and what would stop it."""

    job_id: int
    status_url: str
    type: str
    would_succeed: bool  # no error and no refusal: the restore would go ahead
    target: str | None = None
    lines: list[str] = []
    warnings: list[str] = []
    refusal: str | None = None  # why the restore would be refused
    error: str | None = None  # the dry run failed (an artifact failed authentication, ...)
    steps: list[PlanStep] = []  # a complete system restore: each step's plan


def _masked(lines: list[str]) -> list[str]:
    return [redact(line) for line in lines]


def plan_report(accepted: JobAccepted, kind: str, outcome: Outcome) -> DryRunReport:
    """The dry run's job ended with `outcome`: its RestoreReport (a full restore's
    FullRestoreReport), or the error it failed with."""
    common: dict[str, Any] = {
        "job_id": accepted.job_id,
        "status_url": accepted.status_url,
        "type": kind,
    }
    if outcome.error is not None:
        return DryRunReport(**common, would_succeed=False, error=redact(outcome.error))
    value = outcome.value
    if kind == "full":
        steps = [
            PlanStep(title=s.title, state=s.state, lines=_masked(s.lines)) for s in value.steps
        ]
        return DryRunReport(**common, would_succeed=True, steps=steps)
    return DryRunReport(
        **common,
        would_succeed=value.refusal is None,
        target=redact(value.target),
        lines=_masked(value.lines),
        warnings=_masked(value.warnings),
        refusal=None if value.refusal is None else redact(value.refusal),
    )


def log_plan(context: ApiContext, report: DryRunReport) -> None:
    lines = [f"plan: {line}" for line in report.lines]
    lines += [f"plan: {step.title}: {step.state}" for step in report.steps]
    lines += [f"plan: {line}" for step in report.steps for line in step.lines]
    lines += [f"plan: refused: {report.refusal}"] if report.refusal else []
    for line in lines:
        context.catalog.add_job_event(report.job_id, "info", line)
