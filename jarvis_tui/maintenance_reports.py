"""What the console is sent back by the maintenance verbs, in its own words.

Run in the job's process (`job_process.CONSOLE_VALUES`): the engine's reports
(a prune's report holds every referenced chunk id) stay there, and only these
small plain values cross to the console. Never imports textual.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# A retention rule's reason in full, for the selected row.
RULE_WORDS = {
    "daily": "daily slot (the newest backup of its day)",
    "weekly": "weekly slot (the newest of its week)",
    "monthly": "monthly slot (the newest of its month)",
}
FAILED_WORDS = "failed backup"
NO_SLOT_WORDS = "in no slot"


@dataclass(frozen=True)
class RetentionRow:
    set_id: str
    kind: str
    status: str
    created_at: datetime
    keep: bool
    reasons: tuple[str, ...]  # the engine's own reasons (the CLI's dry run prints them)
    why: str  # the reasons, short enough for a column at 80 columns

    def explained(self) -> str:
        """The decision in a sentence, every reason in full."""
        if not self.keep:
            if self.status == "failed":
                return f"{self.set_id} is deleted: a failed backup fills no retention slot."
            return (
                f"{self.set_id} is deleted: it is not the newest backup of any day, week or "
                "month retention keeps, and nothing else protects it."
            )
        words = [RULE_WORDS.get(reason, _protection(reason)) for reason in self.reasons]
        return f"{self.set_id} is kept: " + "; ".join(words) + "."


@dataclass(frozen=True)
class RetentionPlan:
    """A cleanup's dry run: what retention keeps and why, and what it would delete."""

    policy: str
    rows: list[RetentionRow]
    unfinished: list[str] = field(default_factory=list)  # deletions an earlier run began

    @property
    def doomed(self) -> list[RetentionRow]:
        return [row for row in self.rows if not row.keep]


@dataclass(frozen=True)
class Summary:
    """A maintenance job's outcome: its lines, and whether something went wrong."""

    lines: list[str]
    failed: bool = False


def _protection(reason: str) -> str:
    """A reason that keeps a set whatever the slots say, in full."""
    if reason.startswith(("newest ", "only verified ")):
        return f"the {reason} backup (always kept)"
    return reason  # still being written, in use by a job: the engine's own words


def why(reasons: list[str], status: str) -> str:
    """As the CLI's dry run says them (daily, weekly, newest files), or why it goes."""
    if reasons:
        return ", ".join(reasons)
    return FAILED_WORDS if status == "failed" else NO_SLOT_WORDS


def retention_plan(report: Any) -> RetentionPlan:
    rows = [
        RetentionRow(
            d.candidate.set_id,
            d.candidate.kind,
            d.candidate.status,
            d.candidate.created_at,
            d.keep,
            tuple(d.reasons),
            why(d.reasons, d.candidate.status),
        )
        for d in report.decisions
    ]
    return RetentionPlan(report.policy.describe(), rows, list(report.unfinished))


def cleanup_value(report: Any) -> RetentionPlan | Summary:
    """The dry run's plan, or what the cleanup did."""
    if report.dry_run:
        return retention_plan(report)
    kept = sum(d.keep for d in report.decisions)
    lines = [f"{len(report.deleted)} set(s) deleted, {kept} kept"]
    lines += [f"deleted {set_id}" for set_id in report.deleted]
    lines += [f"pruned {pruned}" for pruned in report.pruned]
    lines += [cluster.describe() for cluster in report.wal]
    lines += [f"problem: {problem}" for problem in report.problems]
    if report.damaged:
        lines.append("stored data is damaged: repair the files store before the next prune")
    return Summary(lines, bool(report.problems))


def prune_value(report: Any) -> Summary:
    lines = [f"files store: {report}"]
    lines += [f"problem: {problem}" for problem in report.problems]
    lines += [str(copy) for copy in report.copies]
    return Summary(lines, not all(copy.ok for copy in report.copies))


def verify_all_value(checks: list) -> Summary:
    failed = [check for check in checks if not check.ok]
    lines = [f"{len(checks)} artifact(s) checked, {len(failed)} failed"]
    for check in failed:
        lines.append(f"FAILED {check.artifact.relpath}: {'; '.join(check.problems)}")
    return Summary(lines, bool(failed))


def drill_value(report: Any) -> Summary:
    lines = [f"{'ok' if c.ok else 'FAILED'} {c.relpath}: {c.detail}" for c in report.checks]
    lines += [f"{kind}: configured but never backed up" for kind in report.untested_sources]
    if not report.checks:
        lines.insert(0, "nothing to drill: no good backup in the catalog yet")
    return Summary(lines, bool(report.failed))


def rebuild_value(report: Any) -> Summary:
    lines = [f"{report.imported} artifact(s) imported, {len(report.new_sets)} new backup set(s)"]
    lines += [f"dropped {relpath} (no longer in the repository)" for relpath in report.dropped]
    lines += [f"skipped {problem}" for problem in [*report.skipped, *report.refused]]
    lines += [f"sidecar ignored: {problem}" for problem in report.forged]
    lines += report.unlisted
    return Summary(lines, report.integrity_problems)


MAINTENANCE_VALUES: dict[str, Callable[[Any], Any]] = {
    "cleanup": cleanup_value,
    "prune": prune_value,
    "verify-all": verify_all_value,
    "drill": drill_value,
    "rebuild-catalog": rebuild_value,
}
