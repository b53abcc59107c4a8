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

import socket
from dataclasses import dataclass, field

from engines.actions.verbs import Request
from engines.catalog import Artifact
from engines.destinations import copy_destinations
from engines.destinations.s3_lock import DeletionLocks, locked_for_deleting
from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.pipeline.artifacts import SIDECAR_SUFFIX
from engines.plumbing.processes import process_alive
from engines.repository.artifacts import clear_leftovers
from engines.repository.set_records import record_relpath
from engines.scheduling.clock import configured_timezone
from engines.scheduling.retention import Candidate, Decision, RetentionPolicy, plan_retention
from engines.sources import SOURCES
from engines.store.layout import SOURCE as FILES_STORE
from engines.store.prune_copies import prune_copies
from engines.workspace import Workspace

# Jobs that write under the repository lock, which cleanup also holds, never overlap it.
LOCKED_JOB_KINDS = ("backup", "cleanup")


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

    @property
    def to_delete(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]


def readers_in_use(
    workspace: Workspace, own_job_id: int | None
) -> tuple[dict[str, str], str | None]:
    """Sets that running jobs may be reading, and a reason to delete nothing at all when a
    reader cannot be tied to one set."""
    in_use: dict[str, str] = {}
    everything: str | None = None
    for job in workspace.catalog.unfinished_jobs():
        if job.id == own_job_id or job.kind in LOCKED_JOB_KINDS:
            continue
        if job.host == socket.gethostname() and job.pid and not process_alive(job.pid):
            continue
        reason = f"in use by job {job.id} ({job.description})"
        if job.set_id:
            in_use[job.set_id] = reason
        else:
            everything = f"job {job.id} ({job.description}) is running; deletion waits for it"
    return in_use, everything


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


def delete_set_everywhere(
    workspace: Workspace, set_id: str, locks: DeletionLocks, context: JobContext
) -> list[str]:
    """Delete a set's files on every destination `locks` holds, then its catalog row;
    problems, if any.

    The set is marked as being deleted before its first file goes. A destination that
    fails here joins `locks.unavailable`, so later sets skip it in this run; there, and
    on every unavailable destination, each copy keeps its state (it is still there)
    with the reason it was not deleted (`failed` if only its sidecar is left), and the
    set stays listed and marked, for the next cleanup to finish.
    """
    catalog = workspace.catalog
    catalog.mark_set_deleting(set_id)
    problems: list[str] = []
    configured = {d.name for d in locks.destinations} | set(locks.unavailable)
    waiting: set[str] = set()  # destinations on which some copy of the set is left
    for artifact in catalog.artifacts_of(set_id):
        copies = {c.destination: c for c in catalog.copies_of(artifact.id)}
        left = {name for name, c in copies.items() if c.state in ("stored", "pending")}
        unconfigured = left - configured
        if unconfigured:
            problems.append(
                f"{artifact.relpath}: its copy on {', '.join(sorted(unconfigured))} cannot be "
                "deleted because that destination is not configured; the set stays listed"
            )
        failed: dict[str, str] = {}  # destination: why this artifact is still there
        partly: set[str] = set()  # destinations where only its sidecar is left
        for destination in locks.destinations:
            name = destination.name
            if name in locks.unavailable:
                continue
            gone = False
            try:
                locks.ensure_held(destination)
                destination.delete(artifact.relpath)
                gone = True
                destination.delete(artifact.relpath + SIDECAR_SUFFIX)
            except (JarvisError, OSError) as error:
                failed[name] = str(error) or type(error).__name__
                if gone:  # the artifact is gone there, its sidecar not: no usable copy
                    partly.add(name)
                    catalog.set_copy_state(
                        artifact.id, name, "failed", f"partly deleted: {_not_deleted(str(error))}"
                    )
                if destination is workspace.repository:
                    problems.append(f"{artifact.relpath} on {name}: {error}")
                else:  # said once for the set below; later artifacts and sets skip it
                    locks.unavailable[name] = failed[name]
                continue
            if name in copies or destination is workspace.repository:
                catalog.set_copy_state(artifact.id, name, "deleted")
        for name in sorted(left & (failed.keys() | locks.unavailable.keys())):
            waiting.add(name)
            if name not in partly:
                reason = failed.get(name) or locks.unavailable[name]
                catalog.set_copy_state(artifact.id, name, copies[name].state, _not_deleted(reason))
    for name in sorted(waiting - {workspace.repository.name}):
        problems.append(
            f"{set_id}: its copies on {name} are not deleted yet ({locks.unavailable[name]}); "
            "the set stays listed and the next cleanup finishes it"
        )
    if not problems and locks.unavailable:
        problems.append(
            f"{set_id}: its record on {', '.join(sorted(locks.unavailable))} waits until that "
            "destination can be reached; the set stays listed and the next cleanup finishes it"
        )
    if not problems:  # the set's sealed record goes last, the repository's copy of it last of all
        record = record_relpath(set_id)
        for destination in sorted(locks.destinations, key=lambda d: d is workspace.repository):
            try:
                locks.ensure_held(destination)
                destination.delete(record)
            except (JarvisError, OSError) as error:
                problems.append(f"{record} on {destination.name}: {error}")
                break  # the repository's record stays while a copy's does
    if problems:
        for problem in dict.fromkeys(problems):
            context.log(problem, level="error")
        return list(dict.fromkeys(problems))
    catalog.delete_backup_set(set_id)
    return []


def _not_deleted(reason: str) -> str:
    return f"not deleted yet: {reason}; the next cleanup retries"


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


def run_cleanup(
    workspace: Workspace,
    context: JobContext,
    *,
    dry_run: bool = False,
) -> CleanupReport:
    """Apply retention. With `dry_run`, decide and report only: nothing is locked or deleted.

    Problems (a copy that could not be deleted, a failed prune) are in the report; the
    sets concerned stay in the catalog for the next run.
    """
    if dry_run:
        report = plan_cleanup(workspace, context.job_id)
        _log_decisions(report, context, "would delete")
        return report
    with workspace.lock("cleanup"):
        clear_leftovers(workspace, context)
        report = plan_cleanup(workspace, context.job_id)
        report.dry_run = False
        _log_decisions(report, context, "deleting")
        if report.unfinished or report.to_delete:
            delete_sets(workspace, report, context)
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
    return run_cleanup(workspace, context, dry_run=request.dry_run)
