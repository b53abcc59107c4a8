"""The restore drill of files, secrets and config: each artifact restored by its source's
own restore into a private scratch folder, then what was written compared with what the
backup holds, read independently of the restore (files: every chunk of every file
re-hashed with the store's chunk-id key; config: every tar member's bytes; secrets:
size and variables). A mismatch raises IntegrityError naming the first differences.
The comparisons (`compare_*`) also check what `restore full` wrote to the original places.
"""

import hashlib
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

from engines.errors import IntegrityError, KeyNotAvailableError
from engines.jobs import JobContext
from engines.pipeline.artifacts import open_artifact_plain
from engines.repository.resolve import ResolvedArtifact
from engines.store.index import load_index
from engines.store.keys import store_keys
from engines.store.restore import FilesRestoreOptions, restore_files
from engines.store.restore_plan import select_entries
from engines.store.snapshots import DIR, FILE, SYMLINK, Entry, load_manifest, shown
from engines.workspace import Workspace

WORK_PURPOSE = "restore-drill"
SHOWN = 5
READ_SIZE = 1 << 20


def _raise_if_any(problems: list[str], label: str) -> None:
    if problems:
        more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise IntegrityError(
            f"{label}: the scratch restore differs from the backup: "
            + "; ".join(problems[:SHOWN])
            + more
        )


def drill_files(workspace: Workspace, resolved: ResolvedArtifact, context: JobContext) -> str:
    keyring = workspace.keyring()
    manifest = load_manifest(resolved.stored, keyring, resolved.label, resolved.expected)
    needed = sum(entry.size for entry in manifest.entries if entry.type == FILE)
    with workspace.work_folder(WORK_PURPOSE, needed=needed) as folder:
        root = folder / "files"
        options = FilesRestoreOptions(target_dir=root, overwrite="always")
        restore_files(workspace, [resolved], options, context)
        return "restored into a scratch folder: " + compare_files(
            workspace, resolved, root, context
        )


def compare_files(
    workspace: Workspace, resolved: ResolvedArtifact, root: Path, context: JobContext
) -> str:
    """Every entry of the snapshot `resolved` as found below `root`: what matched, or
    IntegrityError naming the first differences."""
    keyring = workspace.keyring()
    manifest = load_manifest(resolved.stored, keyring, resolved.label, resolved.expected)
    try:
        keys = store_keys(keyring.find(manifest.key_id), manifest.chunk_id_version)
    except KeyNotAvailableError:
        raise IntegrityError(
            f"{resolved.label}: its chunks were named with key id {manifest.key_id}, which is "
            "not configured; add it to BACKUP_ENCRYPTION_KEY_PREVIOUS"
        ) from None
    index = load_index(workspace.reader(), keyring)
    problems: list[str] = []
    counts = {FILE: 0, DIR: 0, SYMLINK: 0}
    size = 0
    for entry, parts in select_entries(manifest.entries, (), None):
        context.raise_if_cancelled()
        path = root.joinpath(*parts)
        problem = _compare_entry(entry, path, lambda c: keys.chunk_id(c), index)
        if problem:
            problems.append(f"{shown(entry.path)}: {problem}")
        counts[entry.type] = counts.get(entry.type, 0) + 1
        size += entry.size if entry.type == FILE else 0
    _raise_if_any(problems, resolved.label)
    return (
        f"{counts[FILE]} files ({size} bytes, every chunk re-hashed), {counts[DIR]} folders, "
        f"{counts[SYMLINK]} symlinks match the snapshot"
    )


def _compare_entry(
    entry: Entry, path: Path, chunk_id: Callable[[bytes], bytes], index: dict
) -> str | None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "not restored"
    if entry.type == DIR:
        return None if stat.S_ISDIR(info.st_mode) else "restored as something else than a folder"
    if entry.type == SYMLINK:
        if not stat.S_ISLNK(info.st_mode) or os.readlink(path) != entry.target:
            return f"not restored as a symlink to {shown(entry.target)}"
        return None
    if not stat.S_ISREG(info.st_mode):
        return "restored as something else than a file"
    if info.st_size != entry.size:
        return f"{info.st_size} bytes restored, {entry.size} in the backup"
    if stat.S_IMODE(info.st_mode) != stat.S_IMODE(entry.mode):
        return f"mode {stat.S_IMODE(info.st_mode):o}, {stat.S_IMODE(entry.mode):o} in the backup"
    with open(path, "rb") as handle:
        for number, wanted in enumerate(entry.chunk_ids()):
            location = index.get(wanted)
            if location is None:
                return f"chunk {number} is not in the index"
            if chunk_id(handle.read(location.raw_length)) != wanted:
                return f"chunk {number} (from byte {handle.tell()}) differs"
        if handle.read(1):
            return "longer than in the backup"
    return None


def drill_secrets(workspace: Workspace, resolved: ResolvedArtifact, context: JobContext) -> str:
    from engines.sources.secrets import SOURCE, SecretsRestoreOptions

    with workspace.work_folder(WORK_PURPOSE) as folder:
        written = folder / "secret.env"
        SOURCE.restore(workspace, [resolved], SecretsRestoreOptions(to=written), context)
        return "restored into a scratch file: " + compare_secrets(resolved, written)


def compare_secrets(resolved: ResolvedArtifact, written: Path) -> str:
    """The secret file `written` from `resolved`: its size, variables and mode."""
    from engines.sources.secrets import env_values

    data = written.read_bytes()
    mode = stat.S_IMODE(written.stat().st_mode)
    problems = []
    recorded_size = resolved.artifact.plain_size if resolved.artifact else None
    if recorded_size is not None and len(data) != recorded_size:
        problems.append(f"{len(data)} bytes restored, {recorded_size} recorded")
    variables = len(env_values(data.decode("utf-8", "replace")))
    recorded = resolved.metadata.get("variables")
    if recorded is not None and variables != recorded:
        problems.append(f"{variables} variables restored, {recorded} recorded")
    if mode != 0o600:
        problems.append(f"written with mode {mode:o}, not 600")
    _raise_if_any(problems, resolved.label)
    return f"{len(data)} bytes, {variables} variables match"


def drill_config(workspace: Workspace, resolved: ResolvedArtifact, context: JobContext) -> str:
    from engines.sources.config_files import SOURCE, ConfigRestoreOptions

    needed = int(resolved.metadata.get("plain_size") or 0)
    with workspace.work_folder(WORK_PURPOSE, needed=needed) as folder:
        root = folder / "config"
        root.mkdir(mode=0o700)
        SOURCE.restore(workspace, [resolved], ConfigRestoreOptions(target_dir=root), context)
        return "restored into a scratch folder: " + compare_config(
            workspace, resolved, root, context
        )


def compare_config(
    workspace: Workspace, resolved: ResolvedArtifact, root: Path, context: JobContext
) -> str:
    """Every member of the configuration tarball `resolved` as found below `root`."""
    problems: list[str] = []
    files = 0
    with (
        open_artifact_plain(resolved.stored, workspace.keyring(), resolved.expected) as plain,
        tarfile.open(fileobj=plain, mode="r|") as tar,
    ):
        for member in tar:
            context.raise_if_cancelled()
            path = root.joinpath(*member.name.split("/"))
            problem = _compare_member(tar, member, path)
            if problem:
                problems.append(f"{shown(member.name)}: {problem}")
            files += member.isreg()
    recorded = resolved.metadata.get("files")
    if recorded is not None and files != recorded:
        problems.append(f"the archive holds {files} files, its metadata records {recorded}")
    _raise_if_any(problems, resolved.label)
    return f"{files} files match the archive, byte for byte"


def _compare_member(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> str | None:
    if not os.path.lexists(path):
        return "not restored"
    if member.isdir():
        return None if path.is_dir() and not path.is_symlink() else "not restored as a folder"
    if member.issym():
        ok = path.is_symlink() and os.readlink(path) == member.linkname
        return None if ok else f"not restored as a symlink to {shown(member.linkname)}"
    if not member.isreg():
        return None
    source = tar.extractfile(member)
    if source is None or path.is_symlink() or not path.is_file():
        return "not restored as a file"
    wanted, actual = hashlib.sha256(), hashlib.sha256()
    while block := source.read(READ_SIZE):
        wanted.update(block)
    with open(path, "rb") as handle:
        while block := handle.read(READ_SIZE):
            actual.update(block)
    return None if wanted.digest() == actual.digest() else "content differs from the archive"
