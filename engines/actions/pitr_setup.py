"""The `pitr-setup` verb (`pitr setup [--apply]`): the archive settings for the server,
written through ALTER SYSTEM unless it is a dry run, and the archive bound to this
server's cluster (how an operator moves the archive to a new cluster on purpose).
`request.reference` is the archive_command (the command line knows its own executable
and env file).

First, whether PostgreSQL's account can run that archive_command on this host (the
program and its Python, the env file, the repository): `--apply` refuses while it
cannot, changing nothing, since every WAL file would then pile up in pg_wal. The check
reads mode bits, not ACLs: `--force` (SetupOptions.force) applies anyway.
"""

from dataclasses import dataclass, field

import psycopg

from engines.actions.verbs import Request
from engines.config import Settings
from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.pitr.archive_access import archive_command_problems, server_account
from engines.pitr.archive_record import ArchiveRecord, read_record, write_record
from engines.pitr.cluster import from_connection
from engines.pitr.setup import apply_settings, archive_settings
from engines.postgres.connection import connect_maintenance, target_from_settings
from engines.workspace import Workspace


class ArchiveCommandBlockedError(JarvisError):
    """PostgreSQL's account could not run the archive_command: nothing was applied."""


@dataclass(frozen=True)
class SetupOptions:
    force: bool = False  # apply although the account's access looks lacking (ACLs)


@dataclass(frozen=True)
class SetupReport:
    settings: dict[str, str]
    applied: bool
    restart_needed: list[str]
    system_id: int | None = None
    previous_system_id: int | None = None  # the cluster the archive took WAL of before
    account: str | None = None  # who runs the server, when this host could tell
    problems: list[str] = field(default_factory=list)  # what that account lacks
    unchecked: str = ""  # why the account's access was not checked


def run(workspace: Workspace, request: Request, context: JobContext | None) -> SetupReport:
    assert request.reference is not None
    settings = workspace.settings
    command = request.reference
    wanted = archive_settings(command, settings.backup_pitr_archive_timeout)
    if request.dry_run:
        try:
            with connect_maintenance(target_from_settings(settings)) as conn:
                account, problems, unchecked = _access(conn, settings, command)
        except (psycopg.Error, JarvisError) as error:
            account, problems, unchecked = None, [], f"the server did not answer ({error})"
        return SetupReport(wanted, False, [], None, None, account, problems, unchecked)
    with connect_maintenance(target_from_settings(settings)) as conn:
        account, problems, unchecked = _access(conn, settings, command)
        if problems and not getattr(request.options, "force", False):
            raise ArchiveCommandBlockedError(
                "\n".join([*problems, "nothing was applied: fix the above and run `jarvis-tui pitr "
                           "setup --apply` again (--force if an ACL grants what is missing)"])
            )  # fmt: skip
        cluster = from_connection(conn)
        waiting = apply_settings(conn, wanted)
    keyring = workspace.keyring()
    record = read_record(workspace.repository, keyring)
    if record is None or record.system_id != cluster.system_id:
        codec, level = settings.wal_codec
        new = ArchiveRecord(cluster.system_id, None)
        write_record(workspace.repository, keyring, new, codec, level)
    previous = record.system_id if record and record.system_id != cluster.system_id else None
    return SetupReport(
        wanted, True, waiting, cluster.system_id, previous, account, problems, unchecked
    )


def _access(
    conn: psycopg.Connection, settings: Settings, command: str
) -> tuple[str | None, list[str], str]:
    account, why_not = server_account(conn)
    if account is None:
        return None, [], why_not
    return account.name, archive_command_problems(account, command, settings.repository_dir), ""
