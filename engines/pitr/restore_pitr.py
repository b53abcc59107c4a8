"""`restore postgres --pitr --target-… --pgdata DIR`: the newest base backup that ended
before the target, the archived WAL from it to the target checked complete, then the
backup laid out and told to recover (restore_command = wal-fetch, the target, the action)
between marked lines of postgresql.auto.conf, with recovery.signal beside it.

The timeline is written as a number (target_timeline.py): the given one, else the newest
in the archive whose history holds the base backup; the chain is checked along its path.
"""

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from engines.catalog import BackupSet, Catalog
from engines.catalog.rows import BASE_MODE
from engines.errors import JarvisError, NotFoundError
from engines.jobs import JobContext
from engines.pitr.base_restore import is_base, lay_out_base_backup, refuse_unless_empty
from engines.pitr.restore_chain import check_chain
from engines.pitr.restore_start import plan_start, start_and_wait
from engines.pitr.restore_target import PitrTarget, StartRequest, lsn_value, target_time
from engines.pitr.target_timeline import path_for_base
from engines.reports import RestoreReport
from engines.repository.resolve import ResolvedArtifact
from engines.workspace import Workspace

SOURCE = "postgres"
BEGIN = "# jarvis-tui pitr begin"
END = "# jarvis-tui pitr end"


def ended_before(meta: dict, target: PitrTarget) -> bool:
    """For a moment: it stopped before it; for a WAL position: at or before it."""
    if target.kind == "time":
        stopped = datetime.fromisoformat(meta["stop_time"])
        if stopped.microsecond == 0:  # to the second (base_backup says why): its whole second
            stopped += timedelta(seconds=1)
        return stopped <= target_time(target.value)
    if target.kind == "lsn":
        return lsn_value(meta["stop_lsn"]) <= lsn_value(target.value)
    return True


def base_for_target(
    catalog: Catalog, target: PitrTarget, on_timeline: Callable[[dict], bool] | None = None
) -> BackupSet:
    """The newest complete base backup set that ended before the target (and, with
    `on_timeline`, lies on the timeline the restore follows)."""
    seen = elsewhere = 0
    for backup_set in catalog.list_backup_sets(kind=SOURCE):
        if backup_set.status != "complete":
            continue
        bases = [a for a in catalog.artifacts_of(backup_set.id) if a.mode == BASE_MODE]
        if not bases:
            continue
        if on_timeline is not None and not on_timeline(bases[0].metadata):
            elsewhere += 1
            continue
        seen += 1
        if ended_before(bases[0].metadata, target):
            return backup_set
    if not seen and on_timeline is not None and target.timeline is not None:
        raise NotFoundError(
            f"no PostgreSQL base backup lies on timeline {target.timeline}'s history; "
            "restore along another --target-timeline (`jarvis-tui pitr timeline` lists them)"
        )
    if not seen and elsewhere:
        raise NotFoundError(
            f"none of the {elsewhere} PostgreSQL base backups lies on the history of the "
            "newest archived timeline, which a restore follows unless told; restore along "
            "another --target-timeline (`jarvis-tui pitr timeline` lists them)"
        )
    if not seen:
        raise NotFoundError(
            "no PostgreSQL base backup yet, so no moment to restore to "
            "(`jarvis-tui backup postgres --mode base` takes one)"
        )
    raise NotFoundError(
        f"none of the {seen} PostgreSQL base backups ended before {target.describe()}; "
        "restore to a later target"
    )


def restore_to_target(
    workspace: Workspace,
    artifacts: list[ResolvedArtifact],
    pgdata: Path | None,
    target: PitrTarget,
    dry_run: bool,
    context: JobContext,
    *,
    start: StartRequest | None = None,
) -> RestoreReport:
    bases = [a for a in artifacts if is_base(a)]
    if len(bases) != 1 or len(artifacts) != 1:
        raise JarvisError("a point-in-time restore starts from one base backup set")
    if pgdata is None:
        raise JarvisError("a point-in-time restore needs --pgdata DIR, an empty data folder")
    base = bases[0]
    if not ended_before(base.metadata, target):
        raise JarvisError(
            f"{base.label} ended at {base.metadata.get('stop_time')} (WAL "
            f"{base.metadata.get('stop_lsn')}), not before {target.describe()}"
        )
    pgdata = pgdata.expanduser().absolute()
    refuse_unless_empty(pgdata)
    plan = None
    if start is not None:
        major = int(base.metadata.get("pg_major") or 0)
        plan = plan_start(pgdata, start.port, start.timeout_s, major, target)
    repository = workspace.repository
    keyring = workspace.keyring()
    path = path_for_base(workspace, base.metadata, target)
    target = replace(target, timeline=path.timeline)
    context.log(f"checking the archived WAL from {base.label} to {target.describe()}")
    chain = check_chain(
        repository, keyring, repository.repository_id() or "", base.metadata, target, path
    )
    report = RestoreReport(SOURCE, dry_run, str(pgdata))
    would = "would " if dry_run else ""
    segments = f"{chain.count} archived WAL segments {chain.first} to {chain.last}"
    if dry_run:
        meta = base.metadata
        report.add(
            f"would lay out base backup {base.label} (ended {meta.get('stop_time')}, WAL "
            f"{meta.get('start_lsn')} to {meta.get('stop_lsn')}) into {pgdata}"
        )
    else:
        # Its other line says a server started there recovers to the backup's end: not so
        # here, the recovery settings written next take it on to the target.
        laid_out, *_ = lay_out_base_backup(base, pgdata, keyring, context)
        report.add(laid_out)
        try:
            write_recovery(pgdata, target)
        except OSError as error:
            raise JarvisError(
                f"{pgdata}: the base backup is laid out but its recovery settings could not "
                f"be written ({error.strerror}); remove the folder and restore again"
            ) from None
    report.add(f"{segments}: all in the archive")
    if path.switches:
        report.add(f"along {path.describe()} (recovery_target_timeline = {path.timeline})")
    report.add(
        f"{would}recover to {target.describe()} on timeline {target.timeline}, then "
        f"{target.action}; archive_mode=off in "
        "the copy (postgresql.auto.conf, recovery.signal)"
    )
    if target.kind in ("xid", "name"):
        report.warnings.append(
            f"recovery starts from {base.label} (the newest base backup unless one was "
            f"named): if {target.describe()} is older than its end "
            f"({base.metadata.get('stop_time')}), recovery stops with an error; then name an "
            "earlier base backup set"
        )
    if plan is not None and dry_run:
        report.add(f"would {plan.describe()}")
    elif plan is not None:
        for line in start_and_wait(plan, pgdata, base.metadata, target, workspace.settings,
                                   context):  # fmt: skip
            report.add(line)
    elif not dry_run:
        report.add(f"start PostgreSQL on {pgdata} to recover")
    return report


def write_recovery(pgdata: Path, target: PitrTarget) -> None:
    """The recovery settings between the marked lines (replacing earlier ones), and
    recovery.signal."""
    auto = pgdata / "postgresql.auto.conf"
    kept = _without_block(auto.read_text() if auto.exists() else "")
    block = [BEGIN] + [f"{name} = {_quoted(value)}" for name, value in target.settings().items()]
    text = kept + ("" if not kept or kept.endswith("\n") else "\n") + "\n".join([*block, END])
    _write_private(auto, text + "\n")
    _write_private(pgdata / "recovery.signal", "")


def _without_block(text: str) -> str:
    lines, inside = [], False
    for line in text.splitlines(keepends=True):
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            lines.append(line)
    return "".join(lines)


def _quoted(value: str) -> str:
    """As ALTER SYSTEM writes a value: PostgreSQL reads backslash escapes in a quoted
    setting ('\\u' is 'u'), so a backslash is doubled as a quote is."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
