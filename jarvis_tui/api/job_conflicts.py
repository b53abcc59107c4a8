"""Which running jobs keep a job the API starts from starting (409 naming the job).

Each rule reads the catalog's running jobs (any process's: the CLI's, the console's, the
scheduler's, this API's) by their kind and description, as the job list shows them:

- a backup waits for any backup (the repository takes one at a time) and for a complete
  system restore that is not a dry run (it replaces what would be backed up, and holds
  the repository's lock: the backup's job would fail after its 202);
- a verification waits for the job making its set, and for a verification or a deletion
  of the same set (a second one would read everything again; a deletion would pull the
  artifacts from under it);
- a restore waits for a restore of the same type into the same target (or one whose
  target its description does not name: the CLI's and the console's), a dry run
  included (its plan would describe a target being written); a complete system restore
  waits for any restore or backup, and any restore for a complete system restore.

A running dry run conflicts with nothing: it only reads.
"""

import os
from collections.abc import Callable

from engines.actions.verbs import VERBS, Request
from engines.catalog.rows import Job

Conflicts = Callable[[Job], bool]

INTO = " into "  # a restore's description names its target after it (the API's jobs)
DRY_WORDS = (" (dry run)", " --dry-run")  # how a dry run's description ends
_FULL_RESTORE = "restore full"


def _dry_run(job: Job) -> bool:
    return job.description.endswith(DRY_WORDS)


def _full_restore(job: Job) -> bool:
    """A complete system restore writing for real."""
    return job.kind == "restore" and job.description.startswith(_FULL_RESTORE) and not _dry_run(job)


def backup_conflicts(job: Job) -> bool:
    """Whether a running job keeps a backup from starting."""
    return job.kind == "backup" or _full_restore(job)


def verify_conflicts(set_id: str) -> Conflicts:
    """Whether a running job keeps a verification of `set_id` from starting."""
    same_set = {
        (verb.job_kind, verb.describe(Request(reference=set_id)))
        for verb in (VERBS["verify"], VERBS["delete"])
    }

    def conflicts(job: Job) -> bool:
        return job.set_id == set_id or (job.kind, job.description) in same_set

    return conflicts


def restore_conflicts(kind: str, target: str) -> Conflicts:
    """Whether a running job keeps a `kind` restore into `target` from starting."""
    full = kind == "full"

    def conflicts(job: Job) -> bool:
        if _dry_run(job) or job.kind not in ("restore", "backup"):
            return False
        if full or _full_restore(job):
            return True  # the whole system is being replaced
        words = job.description
        if job.kind != "restore" or not words.startswith(f"restore {kind} "):
            return False
        _, into, named = words.partition(INTO)
        return not into or same_target(named, target)

    return conflicts


def same_target(named: str, target: str) -> bool:
    """Whether two restore targets are one place: folders and files are compared as the
    paths they resolve to (`/srv/app/./app.env`, `/srv//app/app.env` or a symlink to it
    is `/srv/app/app.env`), anything else (a database, host:port) as written."""
    if os.path.isabs(named) and os.path.isabs(target):
        return os.path.realpath(named) == os.path.realpath(target)
    return named == target
