"""Carrying out a planned files restore: folders, then files in per-folder batches on
worker threads, then symlinks and the folders' own modes and times.

Each file is written through `TargetTree` into a temporary and renamed into
place with its mode, mtime and (as root) owner. A full disk stops the restore:
what was written is complete, the rest is left as it was, and the error says
how far it got. Any other failure is recorded for its file and the restore goes on.
"""

import errno
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from engines.errors import InsufficientSpaceError, JarvisError, NotFoundError
from engines.jobs import JobContext
from engines.pipeline.compression import default_threads
from engines.store.index import Index
from engines.store.pack_reader import BlobReader
from engines.store.restore_plan import CREATE, EXISTS, OVERWRITE, FilesRestoreOptions, Step
from engines.store.snapshots import DIR, FILE, SYMLINK, Entry, shown
from engines.store.target import TargetTree, replace_symlink, write_file

BATCH_FILES = 64
BATCH_BYTES = 4 * 1024 * 1024
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass
class Outcome:
    created: int = 0
    overwritten: int = 0
    bytes_written: int = 0
    failed: list[str] = field(default_factory=list)


def file_blocks(index: Index, reader: BlobReader, entry: Entry) -> Iterator[bytes]:
    """A file's content, chunk by chunk, each authenticated on the way."""
    for chunk_id in entry.chunk_ids():
        location = index.get(chunk_id)
        if location is None:
            raise NotFoundError(
                f"chunk {chunk_id.hex()[:16]} of {shown(entry.path)} is missing from the "
                "repository's index (run `jarvis-tui verify` on the snapshot)"
            )
        yield reader.read(chunk_id, location)


class _Restorer:
    def __init__(
        self,
        tree: TargetTree,
        index: Index,
        reader: BlobReader,
        context: JobContext,
        total: int,
    ):
        self.tree = tree
        self.index = index
        self.reader = reader
        self.context = context
        self.total = total
        self.as_root = os.geteuid() == 0
        self.umask = os.umask(0o022)
        os.umask(self.umask)  # read, not changed: os.umask can only read by setting
        self.outcome = Outcome()

    def blocks(self, entry: Entry) -> Iterator[bytes]:
        return file_blocks(self.index, self.reader, entry)

    def metadata_applier(
        self, entry: Entry, created_mode: int | None = None
    ) -> Callable[[int], None]:
        """Owner (as root), mode and mtime; chmod is skipped when creation gave the mode."""

        def apply(fd: int) -> None:
            if self.as_root:
                os.fchown(fd, entry.uid, entry.gid)
            if created_mode is None or created_mode & ~self.umask != entry.mode:
                os.fchmod(fd, entry.mode)
            os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))

        return apply

    def restore_batch(self, batch: list[Step]) -> list[tuple[Step, int | Exception]]:
        """Write files of one folder; each gets its size or why it failed. A full disk
        ends the batch: the files after it are not reached."""
        try:
            folder = self.tree.folder(batch[0].parts[:-1], create=True)
        except (OSError, JarvisError) as exc:
            return [(step, exc) for step in batch]
        results: list[tuple[Step, int | Exception]] = []
        try:
            for step in batch:
                try:
                    results.append((step, self._write(folder, step)))
                except (OSError, JarvisError) as exc:
                    results.append((step, exc))
                    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
                        break
        finally:
            os.close(folder)
        return results

    def _write(self, folder: int, step: Step) -> int:
        mode = step.entry.mode & 0o777
        return write_file(
            folder,
            step.parts[-1],
            self.blocks(step.entry),
            apply=self.metadata_applier(step.entry, mode),
            durable=step.action == OVERWRITE,
            mode=mode,
        )

    def restore_symlink(self, step: Step) -> None:
        folder = self.tree.folder(step.parts[:-1], create=True)
        try:
            name, entry = step.parts[-1], step.entry
            replace_symlink(folder, name, entry.target)
            if self.as_root:
                os.chown(name, entry.uid, entry.gid, dir_fd=folder, follow_symlinks=False)
            os.utime(
                name, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=folder, follow_symlinks=False
            )
        finally:
            os.close(folder)

    def make_folder(self, step: Step) -> None:
        folder = self.tree.folder(step.parts[:-1], create=True)
        try:
            os.mkdir(step.parts[-1], 0o700, dir_fd=folder)
        except FileExistsError:
            pass
        finally:
            os.close(folder)

    def finish_folder(self, step: Step) -> None:
        fd = self.tree.folder(step.parts, create=False)
        try:
            self.metadata_applier(step.entry)(fd)
        finally:
            os.close(fd)


def execute(
    tree: TargetTree,
    steps: list[Step],
    index: Index,
    reader: BlobReader,
    options: FilesRestoreOptions,
    context: JobContext,
) -> Outcome:
    work = [s for s in steps if s.action in (CREATE, OVERWRITE)]
    files = [s for s in work if s.entry.type == FILE]
    total = sum(s.entry.size for s in files)
    restorer = _Restorer(tree, index, reader, context, total)
    outcome = restorer.outcome
    folders = [s for s in work if s.entry.type == DIR]
    for step in folders:
        if _guarded(outcome, step, tree, lambda s=step: restorer.make_folder(s)):
            _count(outcome, step)
    threads = default_threads()
    in_flight: deque[Future[list[tuple[Step, int | Exception]]]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="restore") as pool:
        try:
            for batch in _batches(work):
                context.raise_if_cancelled()
                if batch[0].entry.type == SYMLINK:
                    if _guarded(
                        outcome, batch[0], tree, lambda s=batch[0]: restorer.restore_symlink(s)
                    ):
                        _count(outcome, batch[0])
                    continue
                while len(in_flight) >= 2 * threads:
                    _settle(outcome, tree, in_flight.popleft().result())
                    context.progress(outcome.bytes_written, total)
                in_flight.append(pool.submit(restorer.restore_batch, batch))
            while in_flight:
                _settle(outcome, tree, in_flight.popleft().result())
                context.progress(outcome.bytes_written, total)
        except _DiskFull as full:
            for future in in_flight:
                future.cancel()
            for future in in_flight:
                if not future.cancelled():
                    _settle_quietly(outcome, future.result())
            raise InsufficientSpaceError(
                f"restore stopped: no space left on the device while writing {full.path}; "
                f"{outcome.created + outcome.overwritten} of {len(work)} entries restored "
                f"({outcome.bytes_written} of {total} bytes); every file restored is complete, "
                f"{full.path} and the ones not reached were left as they were. Free space "
                "and run the restore again"
            ) from None
    for step in reversed(folders):
        if step.action == CREATE or options.overwrite == "always":
            _guarded(outcome, step, tree, lambda s=step: restorer.finish_folder(s))
    for step in (s for s in steps if s.entry.type == DIR and s.action == EXISTS):
        if options.overwrite == "always":
            _guarded(outcome, step, tree, lambda s=step: restorer.finish_folder(s))
    return outcome


class _DiskFull(Exception):
    def __init__(self, path: str):
        self.path = path


def _count(outcome: Outcome, step: Step) -> None:
    if step.action == CREATE:
        outcome.created += 1
    else:
        outcome.overwritten += 1


def _guarded(outcome: Outcome, step: Step, tree: TargetTree, action: Callable[[], None]) -> bool:
    try:
        action()
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise _DiskFull(tree.display(step.parts)) from None
        outcome.failed.append(f"{tree.display(step.parts)}: {exc.strerror or exc}")
        return False
    except JarvisError as exc:
        outcome.failed.append(f"{tree.display(step.parts)}: {exc}")
        return False
    return True


def _batches(work: list[Step]) -> Iterator[list[Step]]:
    """Files and symlinks to write, files grouped by folder so one task writes many."""
    batch: list[Step] = []
    size = 0
    for step in work:
        if step.entry.type == DIR:
            continue
        same_folder = batch and batch[0].parts[:-1] == step.parts[:-1]
        if batch and (
            step.entry.type != FILE
            or not same_folder
            or len(batch) >= BATCH_FILES
            or size + step.entry.size > BATCH_BYTES
        ):
            yield batch
            batch, size = [], 0
        if step.entry.type != FILE:
            yield [step]
            continue
        batch.append(step)
        size += step.entry.size
    if batch:
        yield batch


def _settle(
    outcome: Outcome, tree: TargetTree, results: list[tuple[Step, int | Exception]]
) -> None:
    for step, result in results:
        if isinstance(result, int):
            outcome.bytes_written += result
            _count(outcome, step)
        elif isinstance(result, OSError) and result.errno in _NO_SPACE:
            raise _DiskFull(tree.display(step.parts))
        elif isinstance(result, OSError):
            outcome.failed.append(f"{tree.display(step.parts)}: {result.strerror or result}")
        else:
            outcome.failed.append(f"{tree.display(step.parts)}: {result}")


def _settle_quietly(outcome: Outcome, results: list[tuple[Step, int | Exception]]) -> None:
    """After a full disk: count what finished, ignore what failed for the same reason."""
    for step, result in results:
        if isinstance(result, int):
            outcome.bytes_written += result
            _count(outcome, step)
