"""Configuration as a source: the files and folders of BACKUP_CONFIG_PATHS as one tarball.

The tar stream (paths relative to `/`, modes, times, symlinks) goes straight
into an encrypted artifact under `config/`. A restore puts the files back
where they were (or below `target_dir`) through `TargetTree`, so it never
follows a symlink; a file that differs from the one on disk is replaced only
with `force`, and the previous one is kept as `NAME.bak`.
"""

import contextlib
import io
import os
import stat
import tarfile
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.catalog import Artifact, BackupSet, catalog_files
from engines.config import Settings
from engines.errors import IntegrityError, JarvisError, NotFoundError
from engines.jobs import JobContext
from engines.pipeline.artifacts import open_artifact_plain
from engines.plumbing.os_errors import explain_os_error
from engines.repository.artifacts import store_artifact
from engines.repository.resolve import ResolvedArtifact, resolved_from_catalog
from engines.sources.base import RestoreReport, Source
from engines.sources.missing_paths import alert_missing_paths, missing_line
from engines.store.snapshots import (
    DIR,
    FILE,
    SYMLINK,
    below_a_non_folder,
    path_problem,
    shown,
)
from engines.store.target import (
    BlockedPathError,
    TargetTree,
    remove_abandoned_temporaries,
    replace_symlink,
    write_file,
)
from engines.store.walker import Walker
from engines.workspace import Workspace

PAX = tarfile.PAX_FORMAT


@dataclass(frozen=True)
class ConfigRestoreOptions:
    target_dir: Path | None = None
    force: bool = False
    dry_run: bool = False


class _Spool(io.RawIOBase):
    """A write-only sink whose bytes the tar generator hands on as they come."""

    def __init__(self) -> None:
        self.pieces: deque[bytes] = deque()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.pieces.append(bytes(data))
        return len(data)


SETTING = "BACKUP_CONFIG_PATHS"


def _roots(settings: Settings) -> tuple[list[Path], list[str]]:
    """The configured paths that exist, and those that do not (the others are still backed
    up); every one missing is an error naming each."""
    roots: list[Path] = []
    missing: list[str] = []
    for configured in settings.backup_config_paths:
        path = Path(os.path.abspath(configured))
        if os.path.lexists(path):
            roots.append(path)
        else:
            missing.append(str(path))
    if missing and not roots:
        raise NotFoundError(
            f"{SETTING}: {', '.join(missing)}: {'does' if len(missing) == 1 else 'do'} not "
            f"exist, so there is nothing to back up; create them or fix {SETTING}"
        )
    return roots, missing


def tar_stream(
    roots: list[Path], context: JobContext, counts: dict[str, int], skip: Sequence[Path] = ()
) -> Iterator[bytes]:
    spool = _Spool()
    walker = Walker((), skip, lambda kind, message: context.log(message, level="warning"))
    with tarfile.open(fileobj=spool, mode="w|", format=PAX) as tar:
        for walked in walker.walk(roots):
            info = tar.gettarinfo(walked.absolute, arcname=walked.path)
            if stat.S_ISREG(walked.info.st_mode):
                try:
                    with open(walked.absolute, "rb") as handle:
                        tar.addfile(info, handle)
                except OSError as exc:
                    context.log(
                        f"{shown(walked.absolute)}: cannot read ({exc.strerror})", "warning"
                    )
                    counts["unreadable"] = counts.get("unreadable", 0) + 1
                    continue
                counts["files"] = counts.get("files", 0) + 1
            else:
                tar.addfile(info)
            while spool.pieces:
                yield spool.pieces.popleft()
    while spool.pieces:
        yield spool.pieces.popleft()


class ConfigSource(Source):
    kind = "config"

    def configured(self, settings: Settings) -> str | None:
        if settings.backup_config_paths:
            return None
        return "BACKUP_CONFIG_PATHS is empty; list the configuration files or folders"

    def back_up(
        self, workspace: Workspace, backup_set: BackupSet, options: Any, context: JobContext
    ) -> list[Artifact]:
        roots, missing = _roots(workspace.settings)
        for path in missing:
            context.log(missing_line(SETTING, path), level="warning")
        counts: dict[str, int] = {}
        artifact = store_artifact(
            workspace,
            backup_set,
            context,
            source="config",
            mode="tar",
            name="config.tar",
            stream=tar_stream(
                roots, context, counts, catalog_files(workspace.settings.catalog_path.resolve())
            ),
            metadata=lambda: {"paths": [str(r) for r in roots], "missing": missing, **counts},
        )
        alert_missing_paths(workspace, backup_set.id, "config", SETTING, missing)
        return [artifact]

    def left_out(self, artifacts: list[Artifact]) -> list[str]:
        """What the tarball lacks that `backup config` fails for (exit 1)."""
        lines = []
        for artifact in artifacts:
            lines += [missing_line(SETTING, path) for path in artifact.metadata.get("missing", [])]
            if artifact.metadata.get("unreadable"):
                lines.append(f"{artifact.metadata['unreadable']} file(s) could not be read")
        return lines

    def restore(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        options: Any,
        context: JobContext,
    ) -> RestoreReport:
        options = options or ConfigRestoreOptions()
        root = Path(os.path.abspath(options.target_dir)) if options.target_dir else Path("/")
        if os.path.lexists(root) and not root.is_dir():
            raise JarvisError(f"{root} is not a folder; name a folder to restore into")
        report = RestoreReport("config", options.dry_run, str(root))
        if not root.exists():  # a new folder: created by the restore, as files restores do
            if options.dry_run:
                report.add(f"would create the target folder {root}")
            else:
                root.mkdir(parents=True, mode=0o700)
        with contextlib.ExitStack() as stack:
            tree = stack.enter_context(TargetTree(root)) if root.exists() else _ABSENT
            for artifact in artifacts:
                keyring = workspace.keyring()
                with open_artifact_plain(artifact.stored, keyring, artifact.expected) as plain:
                    _restore_tar(plain, artifact.label, tree, options, report)
        return report

    def full_restore_options(
        self, artifacts: list[Artifact], dry_run: bool
    ) -> list[ConfigRestoreOptions]:
        """Back where they were; differing files replaced (each kept as NAME.bak)."""
        return [ConfigRestoreOptions(force=True, dry_run=dry_run)]

    def check_restored(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        report: RestoreReport,
        context: JobContext,
    ) -> str:
        from engines.sources.restore_drills import compare_config

        root = Path(report.target)
        return "; ".join(compare_config(workspace, a, root, context) for a in artifacts)

    def verify_restore(
        self, workspace: Workspace, artifact: Artifact, context: JobContext
    ) -> str | None:
        """The scheduled restore drill: restored into a scratch place and compared."""
        from engines.sources.restore_drills import drill_config

        return drill_config(workspace, resolved_from_catalog(workspace, artifact), context)


class _AbsentTree:
    """A target folder that does not exist yet (a dry run into a new folder): empty."""

    def lstat(self, parts: tuple[str, ...]) -> None:
        return None


_ABSENT = _AbsentTree()
FILES_DIFFER = "files-differ"  # the dry run's refusal reason: files differ, no force


def _restore_tar(plain, label: str, tree: TargetTree, options, report: RestoreReport) -> None:
    members = _read_members(plain, label)
    planned, changed = [], []
    for member, data in members:
        parts = tuple(member.name.split("/"))
        try:
            existing = tree.lstat(parts)
            in_the_way = _in_the_way(member, existing)
        except BlockedPathError as exc:
            in_the_way = str(exc)
        if in_the_way:
            _skip_for_safety(report, member.name, in_the_way)
            continue
        action = _action(member, existing, data, tree, parts)
        planned.append((member, parts, action, data))
        if action == "replace":
            changed.append(shown(member.name))
    refusal = (
        f"{len(changed)} file(s) differ from the backup ({', '.join(changed[:5])}); add "
        "--force to replace them (each previous file is kept as NAME.bak)"
    )
    if changed and not options.force and not options.dry_run:
        raise JarvisError(refusal)
    if not options.dry_run:
        folders = {parts[:-1] for _, parts, _, _ in planned}
        removed = remove_abandoned_temporaries(tree, folders)
        if removed:
            report.add(f"removed {removed} temporaries left by an interrupted restore")
    if options.dry_run:
        refused = f"would refuse: {refusal}" if changed and not options.force else None
        _describe_plan(report, [(shown(m.name), action) for m, _, action, _ in planned], refused)
        return
    # The backup's own names: a NAME.bak the restore writes later is no place for a previous.
    restored = {tuple(m.name.split("/")) for m, _ in members}
    for member, parts, action, data in planned:
        name = shown(member.name)
        if action in ("unchanged", "exists"):
            continue
        try:
            folder = tree.folder(parts[:-1], create=True)
            try:
                kept = _apply(member, parts, folder, action, data, restored)
            finally:
                os.close(folder)
        except OSError as exc:
            done = len(report.lines)
            explained = explain_os_error(
                OSError(exc.errno, exc.strerror), where=tree.display(parts)
            )
            raise type(explained)(
                f"cannot write {explained}; {done} entr(ies) were restored before it, the rest "
                "were left as they were"
            ) from None
        unusual = kept not in (None, f"{parts[-1]}.bak")
        later = f" (the previous kept as {shown(str(kept))})" if unusual else ""
        report.add(f"{action:9} {name}{later}")


def _describe_plan(
    report: RestoreReport, planned: list[tuple[str, str]], refusal: str | None
) -> None:
    """The dry run: what it would do in a line, any refusal, then each entry."""
    counts = Counter(action for _, action in planned)
    report.add(
        f"would create {counts['create']}, replace {counts['replace']} (each kept as NAME.bak), "
        f"leave {counts['unchanged'] + counts['exists']} as they are"
    )
    if refusal:
        report.refuse(refusal, reason=FILES_DIFFER)
    for name, action in planned:
        report.add(f"{action:9} {name}")


def _in_the_way(member: tarfile.TarInfo, existing: os.stat_result | None) -> str:
    """Why restoring `member` over what is on disk would be unsafe, or ""."""
    if existing is None:
        return ""
    is_dir = stat.S_ISDIR(existing.st_mode)
    if member.isdir() and not is_dir:
        return "something that is not a folder is in the way"
    if not member.isdir() and is_dir:
        return "a folder is in the way"
    return ""


def _skip_for_safety(report: RestoreReport, name: str, reason: str) -> None:
    report.warnings.append(f"not restored, skipped for safety: {shown(name)}: {reason}")
    report.details["skipped_for_safety"] = report.details.get("skipped_for_safety", 0) + 1


def _read_members(plain, label: str) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Every member with its data, each checked alone and then all together (nothing
    below a symlink or a file of the same tarball, whatever their order) before any write."""
    members = []
    try:
        with tarfile.open(fileobj=plain, mode="r|") as tar:
            for member in tar:
                _check_member(member, label)
                data = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
                members.append((member, data))
    except (tarfile.TarError, EOFError) as exc:
        raise IntegrityError(
            f"{label}: not a readable tarball ({exc}), although it authenticated: it is not a "
            "configuration backup or was written wrongly; nothing was restored"
        ) from None
    kinds = [(m.name, DIR if m.isdir() else SYMLINK if m.issym() else FILE) for m, _ in members]
    found = below_a_non_folder(kinds)
    if found is not None:
        name, ancestor, kind = found
        what = "symlink" if kind == SYMLINK else "file"
        raise IntegrityError(
            f"{label}: refusing member {name!r}: it lies below the {what} {ancestor!r} of the "
            "same backup (the tarball is malformed or hostile); nothing was restored"
        )
    return members


def _check_member(member: tarfile.TarInfo, label: str) -> None:
    """Refuse a member that could be written outside the target, or is not a plain kind."""
    problem = path_problem(member.name)
    if problem:
        raise IntegrityError(f"{label}: refusing member {member.name!r}: the path {problem}")
    if not (member.isfile() or member.isdir() or member.issym()):
        raise IntegrityError(
            f"{label}: refusing member {member.name!r}: not a file, folder or symlink"
        )


def _action(member, existing: os.stat_result | None, data: bytes, tree, parts) -> str:
    if existing is None:
        return "create"
    if member.isdir():
        return "exists"
    if member.issym() and stat.S_ISLNK(existing.st_mode):
        folder = tree.folder(parts[:-1], create=False)
        try:
            same = os.readlink(parts[-1], dir_fd=folder) == member.linkname
        finally:
            os.close(folder)
        return "unchanged" if same else "replace"
    if member.isfile() and stat.S_ISREG(existing.st_mode):
        folder = tree.folder(parts[:-1], create=False)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
            with open(fd, "rb") as handle:
                same = handle.read() == data
        finally:
            os.close(folder)
        return "unchanged" if same else "replace"
    return "replace"


def _free_bak_name(folder: int, parts: tuple[str, ...], taken: set[tuple[str, ...]]) -> str:
    """NAME.bak, else NAME.bak.2, .3…: the first name neither on disk nor restored later."""
    name, number = f"{parts[-1]}.bak", 1
    while (*parts[:-1], name) in taken or _exists(folder, name):
        number += 1
        name = f"{parts[-1]}.bak.{number}"
    return name


def _exists(folder: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=folder)
    except FileNotFoundError:
        return False
    return True


def _keep_previous(folder: int, parts: tuple[str, ...], taken: set[tuple[str, ...]]) -> str:
    """Keep what is at `parts` under a free NAME.bak: a file's bytes, a symlink as a symlink
    (never followed: it may point anywhere). The name it was kept under."""
    name, kept = parts[-1], _free_bak_name(folder, parts, taken)
    if stat.S_ISLNK(os.lstat(name, dir_fd=folder).st_mode):
        replace_symlink(folder, kept, os.readlink(name, dir_fd=folder))
        return kept
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    with open(fd, "rb") as handle:
        previous = handle.read()
    write_file(folder, kept, [previous], apply=lambda fd: None, durable=True)
    return kept


def _apply(
    member: tarfile.TarInfo,
    parts: tuple[str, ...],
    folder: int,
    action: str,
    data: bytes,
    taken: set[tuple[str, ...]],
) -> str | None:
    """Write `member`; the name the previous file was kept under, if it replaced one."""
    name = parts[-1]
    if member.isdir():
        os.mkdir(name, member.mode & 0o7777, dir_fd=folder)
        return None
    kept = _keep_previous(folder, parts, taken) if action == "replace" else None
    if member.issym():
        replace_symlink(folder, name, member.linkname)
        return kept

    def apply(fd: int) -> None:
        os.fchmod(fd, member.mode & 0o7777)
        os.utime(fd, (member.mtime, member.mtime))

    write_file(folder, name, [data], apply=apply, durable=True)
    return kept


SOURCE = ConfigSource()
