"""What an operator can ask of a PostgreSQL backup or restore."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from engines.pitr.restore_target import PitrTarget, StartRequest

MODES = ("full", "schema", "data", "base")  # base: the cluster by pg_basebackup (PITR)


@dataclass(frozen=True)
class PostgresBackupOptions:
    mode: str = "full"
    database: str | None = None  # default: POSTGRES_DB / DATABASE_URL
    output: Path | None = None  # also copy the artifacts (with sidecars) here
    verify_restore: bool | None = None  # None: the VERIFY_RESTORE setting

    def drill_after(self, setting: bool) -> bool:
        """Whether the new backup is restore-drilled: --verify-restore, else the setting."""
        return setting if self.verify_restore is None else self.verify_restore


@dataclass(frozen=True)
class PostgresRestoreOptions:
    dry_run: bool = False
    drop_existing: bool = False
    discard_previous: bool = False
    target_db: str | None = None  # default: POSTGRES_DB, else the database that was dumped
    tables: tuple[str, ...] = ()
    jobs: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    with_globals: bool = False
    no_owner: bool = False  # objects belong to the restoring user, not the backup's owners
    no_acl: bool = False  # the backup's grants (GRANT/REVOKE) are not restored
    pgdata: Path | None = None  # a base backup is laid out into this empty data folder
    pitr: PitrTarget | None = None  # with pgdata: then recovered to this target
    start: StartRequest | None = None  # with pitr: start the server, wait for the target

    @property
    def privilege_flags(self) -> tuple[str, ...]:
        """pg_restore's options for what of owners and grants to leave out."""
        chosen = {"--no-owner": self.no_owner, "--no-acl": self.no_acl}
        return tuple(flag for flag, leave_out in chosen.items() if leave_out)
