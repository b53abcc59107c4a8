"""A base backup laid out into an empty data folder: all or nothing.

The tar is extracted as it is decrypted into a new owner-only folder beside the one
named, and that folder is renamed into place only once every chunk of the artifact
authenticated (it is the artifact asked for, not another set's under its name), the
files matched their backup_manifest and, where installed, pg_verifybackup agreed. A
damaged or swapped artifact therefore leaves nothing behind. Without a recovery
target the folder starts as a consistent copy as of the backup's end (its WAL is in
the tar).
"""

import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engines.catalog import Artifact
from engines.errors import IntegrityError, JarvisError, JobCancelledError
from engines.jobs import JobContext
from engines.pipeline.artifacts import PlainBlocks
from engines.pipeline.crypto import Keyring
from engines.pitr.base_tar import BaseTarWalk, TarFormatError
from engines.pitr.data_owner import hand_over, owner_for
from engines.plumbing.fsutil import atomic_folder, private_work_folder
from engines.plumbing.processes import process_alive
from engines.postgres.tools import candidate_bin_dirs, die_with_parent
from engines.reports import RestoreReport
from engines.repository.resolve import ResolvedArtifact, resolved_from_catalog
from engines.workspace import Workspace

VERIFY_TIMEOUT_S = 600
WORK_PURPOSE = "postgres-base-drill"


class _BlocksReader(io.RawIOBase):
    """An iterator of blocks read as a file (what tarfile's stream mode wants)."""

    def __init__(self, blocks: Iterator[bytes]):
        self._blocks = blocks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._pending = block
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def drain(self) -> None:
        for _ in self._blocks:
            pass


def refuse_unless_empty(pgdata: Path) -> None:
    """A live server's folder, a file, or a folder with anything in it is refused."""
    if pgdata.is_symlink():
        # The laid-out folder is renamed into place, which cannot replace a link; said
        # before the base backup is extracted for nothing.
        raise JarvisError(
            f"{pgdata}: a symbolic link (to {os.readlink(pgdata)}); nothing was changed. "
            "Name the empty (or new) data folder itself"
        )
    if pgdata.exists() and not pgdata.is_dir():
        raise JarvisError(f"{pgdata}: not a folder; name an empty (or new) data folder")
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        pid = _pid_in(pid_file)
        if pid is not None and process_alive(pid):
            raise JarvisError(
                f"{pgdata}: a PostgreSQL server (pid {pid}) runs on this folder; stop it, or "
                "name an empty data folder"
            )
    if pgdata.is_dir() and any(pgdata.iterdir()):
        raise JarvisError(
            f"{pgdata}: the folder is not empty; nothing was changed. Name an empty (or new) "
            "data folder"
        )


def is_base(item: ResolvedArtifact) -> bool:
    return (item.metadata.get("mode") or (item.artifact.mode if item.artifact else "")) == "base"


def restore_base_set(
    workspace: Workspace,
    artifacts: list[ResolvedArtifact],
    pgdata: Path | None,
    dry_run: bool,
    context: JobContext,
) -> RestoreReport:
    """`restore postgres SET --pgdata DIR` of a base backup set."""
    bases = [a for a in artifacts if is_base(a)]
    if len(bases) != 1 or len(artifacts) != 1:
        raise JarvisError("name one base backup (a set of `backup postgres --mode base`)")
    if pgdata is None:
        raise JarvisError(
            f"{bases[0].label} is a base backup of the whole cluster: give --pgdata DIR, an "
            "empty data folder to lay it out into, or name a dump's backup id from "
            "`jarvis-tui list` to restore a database"
        )
    pgdata = pgdata.expanduser().absolute()
    report = RestoreReport("postgres", dry_run, str(pgdata))
    if dry_run:
        refuse_unless_empty(pgdata)
        meta = bases[0].metadata
        report.add(
            f"would lay out base backup {bases[0].label} (system {meta.get('system_identifier')}"
            f", WAL {meta.get('start_lsn')} to {meta.get('stop_lsn')}) into {pgdata}"
        )
        return report
    for line in lay_out_base_backup(bases[0], pgdata, workspace.keyring(), context):
        report.add(line)
    return report


def lay_out_base_backup(
    resolved: ResolvedArtifact, pgdata: Path, keyring: Keyring, context: JobContext
) -> list[str]:
    """Extract `resolved` (a base backup) into the empty `pgdata`; the report's lines."""
    refuse_unless_empty(pgdata)
    walk = BaseTarWalk()
    blocks = PlainBlocks(resolved.stored, keyring, resolved.expected)
    total = resolved.metadata.get("plain_size")
    done = 0

    def counted() -> Iterator[bytes]:
        nonlocal done
        for block in walk.watch(iter(blocks)):
            done += len(block)
            context.progress(done, total)
            context.raise_if_cancelled()
            yield block

    context.log(f"authenticating, decrypting and extracting {resolved.label} beside {pgdata}")
    owner = owner_for(pgdata)
    with atomic_folder(pgdata) as staging:
        reader = _BlocksReader(counted())
        try:
            with tarfile.open(fileobj=io.BufferedReader(reader, 1 << 20), mode="r|") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, TarFormatError) as error:
            raise IntegrityError(
                f"{resolved.label}: not a readable base backup tar: {error}"
            ) from None
        reader.drain()  # the rest: the artifact's end and sealed metadata authenticate
        if blocks.sealed.get("mode", "base") != "base":
            raise JarvisError(f"{resolved.label} is not a base backup")
        if problems := walk.problems():
            raise IntegrityError(
                f"{resolved.label}: the files disagree with the backup's manifest: "
                + "; ".join(problems[:3])
            )
        _private(staging)
        checked = _pg_verifybackup(staging, blocks.sealed.get("pg_major"), context)
    hand_over(pgdata, owner)
    lines = [
        f"laid out base backup {resolved.label} into {pgdata}: {len(walk.files)} files, "
        f"every chunk authenticated, the files match the backup's manifest"
        + (f" ({checked})" if checked else ""),
        f"a server started on {pgdata} recovers to the backup's end (WAL "
        f"{blocks.sealed.get('stop_lsn')}, timeline {blocks.sealed.get('timeline')})",
    ]
    return lines


def lay_out_in_scratch(
    workspace: Workspace, resolved: ResolvedArtifact, context: JobContext
) -> str:
    """The restore drill of a base backup: laid out into a scratch folder, then removed."""
    needed = int(resolved.metadata.get("plain_size") or 0)
    with private_work_folder(workspace.local_root, WORK_PURPOSE, needed=needed) as folder:
        lines = lay_out_base_backup(resolved, folder / "pgdata", workspace.keyring(), context)
    return lines[0].replace(f" into {folder / 'pgdata'}", " into a scratch folder")


def drill_new_base_backup(workspace: Workspace, artifact: Artifact, context: JobContext) -> None:
    """`backup postgres --mode base --verify-restore` (or VERIFY_RESTORE=true): the new
    backup laid out into a scratch folder as the drill does; the result is recorded on
    the artifact, a failure raised as IntegrityError (alerting is the caller's)."""
    context.log(f"restore drill of {artifact.relpath}")
    try:
        line = lay_out_in_scratch(workspace, resolved_from_catalog(workspace, artifact), context)
    except JobCancelledError:
        raise
    except JarvisError as error:
        detail = f"restore drill failed: {error}"
        workspace.catalog.record_verification(artifact.id, False, detail)
        raise IntegrityError(f"{artifact.relpath}: {detail}") from error
    detail = f"restore drill passed: {line}"
    workspace.catalog.record_verification(artifact.id, True, detail)
    context.log(detail)


def _private(folder: Path) -> None:
    """PostgreSQL starts only on an owner-only data folder."""
    for root, _folders, files in os.walk(folder):
        os.chmod(root, 0o700)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o600)


def _pg_verifybackup(folder: Path, major: Any, context: JobContext) -> str | None:
    """pg_verifybackup of the backup's major version on the laid-out folder, if installed."""
    tool = _find_verifybackup(major)
    if tool is None:
        context.log("pg_verifybackup is not installed; the manifest was checked by us alone")
        return None
    result = subprocess.run(
        [str(tool), "--quiet", str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "LC_MESSAGES": "C"},
        timeout=VERIFY_TIMEOUT_S,
        preexec_fn=die_with_parent,
    )
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        raise IntegrityError(f"pg_verifybackup found the laid-out backup damaged: {detail}")
    return "pg_verifybackup agrees, WAL included"


def _find_verifybackup(major: Any) -> Path | None:
    found = [d / "pg_verifybackup" for d in candidate_bin_dirs()]
    found = [tool for tool in found if tool.is_file()]
    same = [tool for tool in found if tool.parent.parent.name == str(major)]
    return (same or found or [None])[0]


def _pid_in(pid_file: Path) -> int | None:
    try:
        first = pid_file.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() else None
