"""`export files SNAPSHOT --tar OUT.tar.gz`: a standard tarball for the guide's `tar -xzf`.

Paths in the tarball are the snapshot's (relative, like `tmp/jarvis-music-uploads/a.mp3`),
with modes, owners, mtimes, symlinks and empty folders. The file appears only
once complete (temporary name, fsync, rename).
"""

import contextlib
import gzip
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.plumbing.fsutil import atomic_output
from engines.store.index import load_index
from engines.store.pack_reader import BlobReader
from engines.store.resolve import resolve_snapshot
from engines.store.restore_writer import file_blocks
from engines.store.snapshots import DIR, FILE, Entry, load_manifest
from engines.workspace import Workspace

TAR_GZIP_LEVEL = 6
PAX = tarfile.PAX_FORMAT
SUFFIXES = (".tar.gz", ".tgz", ".tar")


@dataclass
class ExportReport:
    snapshot: str
    output: Path
    entries: int
    bytes: int


class _ChunkStream(io.RawIOBase):
    def __init__(self, blocks):
        self._blocks = iter(blocks)
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._current:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._current = memoryview(block)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count


def _tar_info(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.mtime = entry.mtime_ns // 1_000_000_000
    if entry.type == DIR:
        info.type = tarfile.DIRTYPE
    elif entry.type == FILE:
        info.size = entry.size
    else:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    return info


def export_tar(
    workspace: Workspace, reference: str, output: Path, context: JobContext
) -> ExportReport:
    if not output.name.endswith(SUFFIXES):
        raise JarvisError(f"--tar {output}: name it .tar.gz (or .tgz, .tar)")
    if output.exists():
        raise JarvisError(f"--tar {output} already exists; choose another name or remove it")
    if not output.parent.is_dir():
        raise JarvisError(f"--tar {output}: folder {output.parent} does not exist")
    snapshot = resolve_snapshot(workspace, reference)
    keyring = workspace.keyring()
    manifest = load_manifest(snapshot.stored, keyring, snapshot.label, snapshot.expected)
    index = load_index(workspace.reader(), keyring)
    total = sum(e.size for e in manifest.entries if e.type == FILE)
    done = 0
    with BlobReader(workspace.reader(), keyring) as reader, atomic_output(output) as handle:
        compressed = not output.name.endswith(".tar")
        sink = (
            gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=TAR_GZIP_LEVEL, mtime=0)
            if compressed
            else contextlib.nullcontext(handle)
        )
        with sink as stream, tarfile.open(fileobj=stream, mode="w|", format=PAX) as tar:
            for entry in manifest.entries:
                context.raise_if_cancelled()
                info = _tar_info(entry)
                if entry.type == FILE:
                    tar.addfile(
                        info, io.BufferedReader(_ChunkStream(file_blocks(index, reader, entry)))
                    )
                    done += entry.size
                    context.progress(done, total)
                else:
                    tar.addfile(info)
    context.log(f"exported {snapshot.label} to {output}: {len(manifest.entries)} entries")
    return ExportReport(snapshot.label, output, len(manifest.entries), done)
