"""`jarvis-tui repair`: rebuild the files store's index from the packs that authenticate.

Modelled on restic's `repair index` and `repair packs`. Every pack is read in
full (header, trailer, layout, every blob); the index is rebuilt from the
trailers of the intact ones. The blobs of a damaged pack that still
authenticate (located by its trailer when that opens, else by the old index)
are sealed again into new packs, and the damaged pack is moved aside to
`files/damaged/` rather than deleted. Last, every snapshot is checked against
the new index, and the snapshots and files whose data is still missing are
listed. Order: new packs, the new index (a new generation), then the old index
files, then the damaged packs, so an interrupted repair loses nothing.
"""

import shutil
from collections import defaultdict
from dataclasses import dataclass, field

from engines.actions.verbs import Request
from engines.destinations.base import Destination
from engines.errors import IntegrityError, KeyNotAvailableError
from engines.jobs import JobContext
from engines.store.blobs import decompress_chunk
from engines.store.index import index_files, read_index_file, write_index
from engines.store.layout import SOURCE
from engines.store.pack_reader import (
    PackKey,
    iter_pack_files,
    pack_name_of,
    read_pack,
    read_pack_bytes,
)
from engines.store.packs import BlobLocation, PackSealer, PackWriter
from engines.store.prune import rewriting_store, snapshot_keys
from engines.store.snapshots import load_stored_manifest, shown
from engines.workspace import Workspace

DAMAGED_FOLDER = f"{SOURCE}/damaged"
SHOWN_FILES = 5
COPY_BUFFER = 1 << 20

Entries = list[tuple[bytes, BlobLocation]]


@dataclass
class RepairReport:
    dry_run: bool
    packs: int = 0
    damaged: list[str] = field(default_factory=list)  # pack names
    salvaged: int = 0  # chunks of damaged packs sealed again
    lost: int = 0  # chunks of damaged packs that no longer authenticate
    packs_written: int = 0
    index_entries: int = 0
    affected: list[str] = field(default_factory=list)  # one line per snapshot still missing data
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        verb = "would salvage" if self.dry_run else "salvaged"
        text = (
            f"{self.packs} pack(s) read, {len(self.damaged)} damaged; {verb} {self.salvaged} "
            f"chunk(s), {self.lost} lost; index of {self.index_entries} chunk(s)"
        )
        if not self.affected:
            return text + "; every snapshot has all its data"
        return text + f"; {len(self.affected)} snapshot(s) still miss data"


def repair_store(
    workspace: Workspace, context: JobContext, *, dry_run: bool = False
) -> RepairReport:
    repository = workspace.repository
    with rewriting_store(workspace, context, "repair", dry_run=dry_run):
        keyring = workspace.keyring()
        report = RepairReport(dry_run)
        old_indexes = index_files(repository)
        hints, generation = _old_locations(workspace, old_indexes, report)
        intact: Entries = []
        damaged: list[tuple[str, Entries]] = []
        for pack in iter_pack_files(repository):
            context.raise_if_cancelled()
            report.packs += 1
            entries, error = _check_pack(pack.key, workspace)
            if error is None:
                intact.extend(entries)
                continue
            name = pack_name_of(pack.key)
            report.damaged.append(name)
            report.problems.append(f"damaged: {error}")
            damaged.append((pack.key, entries or hints.get(name, [])))
        known = {chunk_id for chunk_id, _ in intact}
        writer = PackWriter(repository, PackSealer(keyring.current))
        salvaged: set[bytes] = set()
        with writer:
            for pack_key, candidates in damaged:
                context.raise_if_cancelled()
                _salvage(
                    pack_key,
                    candidates,
                    known,
                    salvaged,
                    None if dry_run else writer,
                    workspace,
                    report,
                )
        report.packs_written = writer.packs_written
        located = known | salvaged
        report.index_entries = len(located)
        _affected_snapshots(workspace, located, report, context)
        for problem in report.problems:
            context.log(problem, level="warning")
        if dry_run:
            context.log(f"repair (dry run): {report}")
            return report
        write_index(
            repository,
            keyring.current,
            intact + writer.locations,
            generation=generation + 1,
            rebuilt=True,
        )
        for key in old_indexes:
            repository.delete(key)
        for pack_key, _ in damaged:
            _move_aside(repository, pack_key)
        context.log(f"repair: {report}")
        return report


def _old_locations(
    workspace: Workspace, keys: list[str], report: RepairReport
) -> tuple[dict[str, Entries], int]:
    """What every readable index file (any generation) says each pack holds."""
    hints: dict[str, Entries] = defaultdict(list)
    generation = 0
    for key in keys:
        try:
            file = read_index_file(workspace.repository, key, workspace.keyring())
        except (IntegrityError, KeyNotAvailableError) as exc:
            report.problems.append(f"unreadable index file {key} left out: {exc}")
            continue
        generation = max(generation, file.generation)
        for chunk_id, location in file.entries:
            hints[location.pack].append((chunk_id, location))
    return hints, generation


def _check_pack(pack_key: str, workspace: Workspace) -> tuple[Entries, str | None]:
    """The pack's entries, and what is wrong with it (None when every byte is sound)."""
    try:
        opened = read_pack(workspace.repository, pack_key, workspace.keyring())
    except IntegrityError as exc:
        return [], str(exc)
    for _, _, plain in opened.blobs():
        if isinstance(plain, IntegrityError):
            return opened.entries, str(plain)
    return opened.entries, None


def _salvage(
    pack_key: str,
    candidates: Entries,
    known: set[bytes],
    salvaged: set[bytes],
    writer: PackWriter | None,
    workspace: Workspace,
    report: RepairReport,
) -> None:
    """Seal again (unless a dry run: `writer` None) the blobs of a damaged pack that still
    authenticate as their chunk."""
    data = read_pack_bytes(workspace.repository, pack_key)
    file_name = pack_key.rpartition("/")[2]
    try:
        key = PackKey(data, workspace.keyring(), pack_name_of(pack_key))
    except IntegrityError:
        report.lost += len({chunk_id for chunk_id, _ in candidates} - known - salvaged)
        return
    for chunk_id, location in candidates:
        if chunk_id in known or chunk_id in salvaged:
            continue
        sealed = data[location.offset : location.offset + location.length]
        try:
            blob = key.open_blob(chunk_id, sealed)
            decompress_chunk(blob, location.raw_length, f"chunk in pack {file_name}")
        except IntegrityError:
            report.lost += 1
            continue
        if writer is not None:
            writer.add(chunk_id, writer.seal(chunk_id, blob), location.raw_length)
        salvaged.add(chunk_id)
        report.salvaged += 1


def _affected_snapshots(
    workspace: Workspace, located: set[bytes], report: RepairReport, context: JobContext
) -> None:
    keyring = workspace.keyring()
    for key in snapshot_keys(workspace):
        context.raise_if_cancelled()
        try:
            manifest = load_stored_manifest(workspace.repository, key, keyring)
        except (IntegrityError, KeyNotAvailableError) as exc:
            report.problems.append(f"cannot read snapshot {key}: {exc}")
            continue
        files = [
            shown(entry.path)
            for entry in manifest.entries
            if any(chunk_id not in located for chunk_id in entry.chunk_ids())
        ]
        if files:
            more = f" and {len(files) - SHOWN_FILES} more" if len(files) > SHOWN_FILES else ""
            report.affected.append(
                f"{key}: {len(files)} file(s) miss data: {', '.join(files[:SHOWN_FILES])}{more}"
            )


def _move_aside(repository: Destination, pack_key: str) -> None:
    """Move the damaged pack under `files/damaged/`. The face has no rename (S3 has none
    either): the pack is copied there through the destination's streams, and deleted
    only once its copy is complete and durable, so a repair killed in between leaves
    two copies, never none. Damaged packs are few, so the copy costs little."""
    aside = f"{DAMAGED_FOLDER}/{pack_key.rpartition('/')[2]}"
    with repository.open_read(pack_key) as source, repository.open_write(aside) as output:
        shutil.copyfileobj(source, output, COPY_BUFFER)
    repository.delete(pack_key)


def run(workspace: Workspace, request: Request, context: JobContext) -> RepairReport:
    """The `repair` verb."""
    return repair_store(workspace, context, dry_run=request.dry_run)
