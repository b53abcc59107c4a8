"""The `pitr-setup` verb (`pitr setup [--apply]`): the archive settings for the server,
written through ALTER SYSTEM unless it is a dry run, and the archive bound to this
server's cluster (how an operator moves the archive to a new cluster on purpose).
`request.reference` is the archive_command (the command line knows its own executable
and env file)."""

from dataclasses import dataclass

from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.pitr.archive_record import ArchiveRecord, read_record, write_record
from engines.pitr.cluster import from_connection
from engines.pitr.setup import apply_settings, archive_settings
from engines.postgres.connection import connect_maintenance, target_from_settings
from engines.workspace import Workspace


@dataclass(frozen=True)
class SetupReport:
    settings: dict[str, str]
    applied: bool
    restart_needed: list[str]
    system_id: int | None = None
    previous_system_id: int | None = None  # the cluster the archive took WAL of before


def run(workspace: Workspace, request: Request, context: JobContext | None) -> SetupReport:
    assert request.reference is not None
    settings = workspace.settings
    wanted = archive_settings(request.reference, settings.backup_pitr_archive_timeout)
    if request.dry_run:
        return SetupReport(wanted, False, [])
    with connect_maintenance(target_from_settings(settings)) as conn:
        cluster = from_connection(conn)
        waiting = apply_settings(conn, wanted)
    keyring = workspace.keyring()
    record = read_record(workspace.repository, keyring)
    if record is None or record.system_id != cluster.system_id:
        codec, level = settings.wal_codec
        new = ArchiveRecord(cluster.system_id, None)
        write_record(workspace.repository, keyring, new, codec, level)
    previous = record.system_id if record and record.system_id != cluster.system_id else None
    return SetupReport(wanted, True, waiting, cluster.system_id, previous)
