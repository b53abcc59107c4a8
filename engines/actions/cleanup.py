"""`jarvis-tui cleanup` (the guide's `backup:cleanup`): retention, deletion, prune.

Under the repository lock (no backup runs meanwhile) and each S3 prefix's lock
(no other process deletes there) retention decides; each deleted set is first
marked as being deleted, then loses its artifacts and sidecars on every
destination, each copy marked deleted as it goes, and the catalog row goes last.
A destination that cannot be reached keeps its copies, recorded as still there
with the reason, and the set stays listed and marked: the next cleanup finishes
it first, whatever retention says by then. Then each source that keeps a store
of its own (the files store) prunes data no snapshot references, on the
repository and on every copy destination.
"""

from dataclasses import dataclass, field

from engines.actions.set_deletion import delete_set_everywhere, readers_in_use
from engines.actions.verbs import Request
from engines.catalog import Artifact
from engines.catalog.rows import BASE_MODE
from engines.destinations import copy_destinations
from engines.destinations.deletion_locks import locked_for_deleting
from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.pitr.wal_retention import ClusterWal, plan_wal_retention, remove_wal
from engines.repository.artifacts import clear_leftovers
from engines.scheduling.clock import configured_timezone
from engines.scheduling.retention import Candidate, Decision, RetentionPolicy, plan_retention
from engines.sources import SOURCES
from engines.store.layout import SOURCE as FILES_STORE
from engines.store.prune_copies import prune_copies
from engines.workspace import Workspace


@dataclass
class CleanupReport:
    dry_run: bool
    policy: RetentionPolicy
    decisions: list[Decision]
    # Sets whose deletion an earlier run began and could not finish: finished first.
    unfinished: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    # Prunes refused because stored data is damaged (also in `problems`): `repair` first.
    damaged: list[str] = field(default_factory=list)
    # Archived WAL (PITR) per cluster: what goes, before the oldest kept base backup.
    wal: list[ClusterWal] = field(default_factory=list)

    @property
    def to_delete(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]


def plan_cleanup(workspace: Workspace, own_job_id: int | None = None) -> CleanupReport:
    catalog = workspace.catalog
    unfinished = catalog.sets_being_deleted()
    artifacts: dict[str, list[Artifact]] = {}
    for artifact in catalog.all_artifacts():
        artifacts.setdefault(artifact.set_id, []).append(artifact)
    # A set half deleted is no longer a backup retention could keep.
    candidates = [
        Candidate.of(s, artifacts.get(s.id, []))
        for s in catalog.list_backup_sets()
        if s.id not in unfinished
    ]
    policy = RetentionPolicy.from_settings(workspace.settings)
    in_use, everything = readers_in_use(workspace, own_job_id)
    decisions = plan_retention(
        candidates,
        policy,
        configured_timezone(workspace.settings),
        in_use=in_use,
        everything_in_use=everything,
    )
    return CleanupReport(
        dry_run=True, policy=policy, decisions=decisions, unfinished=list(unfinished)
    )


def run_prunes(workspace: Workspace, context: JobContext, report: CleanupReport) -> None:
    """Let each source with a store of its own (the files store) remove unreferenced data,
    then the copy destinations mirror the files store's prune."""
    pruned: set[str] = set()
    for entry in SOURCES:
        kind = entry.kind
        try:
            source = entry.source
        except Exception as error:  # a broken source module must not stop the others' prune
            report.problems.append(
                f"cannot load the {kind} source: {type(error).__name__}: {error}"
            )
            continue
        try:
            outcome = source.prune(workspace, context)
        except JarvisError as error:
            report.problems.append(f"prune of {kind}: {error}")
            if isinstance(error, IntegrityError):
                report.damaged.append(kind)
            context.log(f"prune of {kind} failed: {error}", level="error")
            continue
        if outcome is not None:  # None: a source without a store of its own
            report.pruned.append(f"{kind}: {outcome}")
            pruned.add(kind)
    if FILES_STORE not in pruned:
        return  # the copies follow the repository's prune, never one that was refused
    try:
        outcomes = prune_copies(workspace, context)
    except JarvisError as error:
        report.problems.append(f"prune of the copies of {FILES_STORE}: {error}")
        return
    for copy in outcomes:
        (report.pruned if copy.ok else report.problems).append(f"{FILES_STORE} on {copy}")


def delete_sets(workspace: Workspace, report: CleanupReport, context: JobContext) -> None:
    """The sets an earlier run left half deleted, then those retention deletes, under each
    destination's lock; run under the repository lock."""
    destinations = [workspace.repository, *copy_destinations(workspace.settings)]
    doomed = [*report.unfinished, *(d.candidate.set_id for d in report.to_delete)]
    decisions = {d.candidate.set_id: d for d in report.to_delete}
    with locked_for_deleting(destinations, "cleanup") as locks:
        for line in locks.took_over():
            context.log(line, level="warning")
        for number, set_id in enumerate(doomed, start=1):
            context.raise_if_cancelled()
            in_use, everything = readers_in_use(workspace, context.job_id)
            if set_id in in_use or everything:
                # A reader started after the plan was made: this set waits for the next run.
                reason = in_use.get(set_id) or str(everything)
                if set_id in decisions:
                    decisions[set_id].reasons.append(reason)
                context.log(f"{set_id}: not deleted now, {reason}")
                continue
            problems = delete_set_everywhere(workspace, set_id, locks, context)
            report.problems.extend(problems)
            if not problems:
                report.deleted.append(set_id)
                context.log(f"deleted {set_id}")
            context.progress(number, len(doomed), "sets")


def plan_wal(workspace: Workspace, report: CleanupReport, context: JobContext) -> bool:
    """Which archived WAL goes, from the base backups still kept (after a real run's
    deletions: a set that could not be deleted still counts). True if any goes."""
    kept = {d.candidate.set_id for d in report.decisions if d.keep}
    if not report.dry_run:
        kept |= {d.candidate.set_id for d in report.to_delete} - set(report.deleted)
    bases = [
        a.metadata
        for a in workspace.catalog.all_artifacts()
        if a.set_id in kept and a.mode == BASE_MODE and a.status == "complete"
    ]
    try:
        report.wal = plan_wal_retention(workspace.repository, workspace.keyring(), bases)
    except JarvisError as error:
        report.problems.append(f"WAL retention: {error}; no WAL was deleted")
        context.log(f"WAL retention: {error}; no WAL was deleted", level="error")
        return False
    for cluster in report.wal:
        context.log(cluster.describe(report.dry_run))
    return any(cluster.count for cluster in report.wal)


def delete_wal(workspace: Workspace, report: CleanupReport, context: JobContext) -> None:
    """The planned WAL, removed from the repository and every copy destination, each under
    its deletion lock; one that cannot be locked keeps its WAL for the next run."""
    destinations = [workspace.repository, *copy_destinations(workspace.settings)]
    with locked_for_deleting(destinations, "cleanup") as locks:
        for name, reason in locks.unavailable.items():
            report.problems.append(f"WAL on {name}: not deleted now ({reason})")
        problems = remove_wal(report.wal, locks.destinations)
    report.problems.extend(problems)
    for problem in problems:
        context.log(problem, level="warning")


NOT_APPROVED = "not marked DELETE in the preview this cleanup was confirmed on"


def hold_back_unapproved(report: CleanupReport, approved: frozenset[str]) -> list[str]:
    """Keep every set retention now deletes that is not in `approved`: a backup made since
    the preview can move a set the operator saw kept into no slot. The held back ids."""
    held = [s for s in report.unfinished if s not in approved]
    report.unfinished = [s for s in report.unfinished if s in approved]
    for decision in report.to_delete:
        if decision.candidate.set_id not in approved:
            decision.reasons.append(NOT_APPROVED)
            held.append(decision.candidate.set_id)
    return held


def run_cleanup(
    workspace: Workspace,
    context: JobContext,
    *,
    dry_run: bool = False,
    approved: frozenset[str] | None = None,
) -> CleanupReport:
    """Apply retention. With `dry_run`, decide and report only: nothing is locked or deleted.
    With `approved`, only those sets may be deleted (what the operator was shown).

    Problems (a copy that could not be deleted, a failed prune) are in the report; the
    sets concerned stay in the catalog for the next run.
    """
    if dry_run:
        report = plan_cleanup(workspace, context.job_id)
        _log_decisions(report, context, "would delete")
        plan_wal(workspace, report, context)
        return report
    with workspace.lock("cleanup"):
        clear_leftovers(workspace, context)
        report = plan_cleanup(workspace, context.job_id)
        report.dry_run = False
        if approved is not None:
            for set_id in hold_back_unapproved(report, approved):
                context.log(f"{set_id}: kept, {NOT_APPROVED}; the next cleanup decides again")
        _log_decisions(report, context, "deleting")
        if report.unfinished or report.to_delete:
            delete_sets(workspace, report, context)
        if plan_wal(workspace, report, context):
            delete_wal(workspace, report, context)
    run_prunes(workspace, context, report)
    context.log(
        f"cleanup: {len(report.deleted)} set(s) deleted, "
        f"{sum(d.keep for d in report.decisions)} kept"
        + (f", {len(report.problems)} problem(s)" if report.problems else "")
    )
    return report


def _log_decisions(report: CleanupReport, context: JobContext, verb: str) -> None:
    for set_id in report.unfinished:
        context.log(f"{set_id}: its deletion began earlier and is not finished; {verb} it")
    context.log(f"retention {report.policy.describe()}: {verb} {len(report.to_delete)} set(s)")
    for decision in report.decisions:
        context.log(f"{decision.candidate.set_id}: {decision.text}", level="debug")


def run(workspace: Workspace, request: Request, context: JobContext) -> CleanupReport:
    """The `cleanup` verb (`jarvis-tui cleanup` and the schedule's cleanup)."""
    approved = None if request.approved is None else frozenset(request.approved)
    return run_cleanup(workspace, context, dry_run=request.dry_run, approved=approved)
