"""Deleting one backup set on every destination, for cleanup and the `delete` verb.

The set is marked as being deleted before its first file goes; then each
artifact and its sidecar go from each destination the verb holds the lock of,
each copy marked deleted as it goes; the set's record goes last (the
repository's last of all), then the catalog row. A destination that cannot be
reached keeps its copies, recorded as still there with why, and the set stays
listed and marked for the next cleanup to finish.
"""

from engines.destinations.deletion_locks import DeletionLocks
from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.pipeline.artifacts import SIDECAR_SUFFIX
from engines.repository.set_records import record_relpath
from engines.workspace import Workspace

# Jobs that write under the repository lock, which cleanup also holds, never overlap it.
LOCKED_JOB_KINDS = ("backup", "cleanup")


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
        if job.gone_here():
            continue
        reason = f"in use by job {job.id} ({job.description})"
        if job.set_id:
            in_use[job.set_id] = reason
        else:
            everything = f"job {job.id} ({job.description}) is running; deletion waits for it"
    return in_use, everything


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
