"""Deleting one backup set on request (the console's catalog pane), the way cleanup does.

Under the repository lock, so no backup or cleanup runs meanwhile, and each S3
prefix's lock, so no other process deletes there; refused while a job may be
reading the set. Artifacts and sidecars go from every destination, each copy is
marked deleted as it goes, and the catalog row goes last; a set interrupted, or
kept by a destination that cannot be reached, stays listed, marked as being
deleted, and the next delete or cleanup finishes it. Data that only this set
referenced in the files store is pruned by the next cleanup.
"""

from engines.actions.set_deletion import delete_set_everywhere, readers_in_use
from engines.actions.verbs import Request
from engines.destinations import copy_destinations
from engines.destinations.deletion_locks import locked_for_deleting
from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.workspace import Workspace


def delete_backup_set(workspace: Workspace, set_id: str, context: JobContext) -> None:
    workspace.catalog.get_backup_set(set_id)  # a clear NotFoundError for an unknown id
    with workspace.lock(f"delete {set_id}"):
        in_use, everything = readers_in_use(workspace, context.job_id)
        reason = in_use.get(set_id) or everything
        if reason:
            raise JarvisError(f"{set_id} was not deleted: {reason}; try again when it has finished")
        destinations = [workspace.repository, *copy_destinations(workspace.settings)]
        with locked_for_deleting(destinations, f"delete {set_id}") as locks:
            for line in locks.took_over():
                context.log(line, level="warning")
            problems = delete_set_everywhere(workspace, set_id, locks, context)
    if problems:
        raise JarvisError(
            f"{set_id} is still listed: " + "; ".join(problems) + "; the next delete or "
            "cleanup finishes it"
        )
    context.log(f"deleted {set_id}; the next cleanup prunes data nothing else references")


def run(workspace: Workspace, request: Request, context: JobContext) -> None:
    """The `delete` verb: the set `request.reference` (the console's catalog pane)."""
    delete_backup_set(workspace, str(request.reference), context)
