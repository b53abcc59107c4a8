"""Prefetch for wal-fetch: PostgreSQL asks restore_command for one segment at a time and
waits, so a worker (wal_prefetch_worker.py) brings the next ones while it replays, into
`pg_wal/jarvis-fetch/`, where the launcher's fast path takes each by its exact name.

The folder (inside pg_wal, which base backups leave out; plaintext as the rest of pg_wal):

    <segment name>     fetched, authenticated and checked like any wal-fetch, then written
                       as .<name>.part and renamed: whole or absent
    wanted             "<name> <system id> <segment size>": the segment the slow path
                       fetched last, i.e. where recovery is; the worker follows it
    worker.lock        held by the one worker (wal_worker.py), its pid inside

When recovery asks for a name the worker did not have (the first segment, a timeline
switch, a gap, a worker behind), wal-fetch's slow path fetches it itself, then calls
`follow`: the worker is repositioned there, files behind it or of another timeline go.
"""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from engines.pitr.restore_chain import segment_name
from engines.pitr.wal_files import segment_number
from engines.pitr.wal_spools import COMING, fetch_folder
from engines.pitr.wal_worker import start_detached, worker_running
from engines.plumbing.fsutil import atomic_output

WANTED = "wanted"
_SEGMENT = re.compile("[0-9A-F]{24}")


@dataclass(frozen=True)
class Position:
    """Where recovery is: the segment it last got, its cluster and segment size."""

    name: str
    system_id: int
    segment_size: int

    @property
    def timeline(self) -> str:
        return self.name[:8]

    @property
    def number(self) -> int:
        return segment_number(self.name, self.segment_size)

    def name_of(self, number: int) -> str:
        """The segment `number` on this timeline."""
        return segment_name(int(self.timeline, 16), number, self.segment_size)

    def behind_or_elsewhere(self, name: str) -> bool:
        """A spooled segment recovery will not ask for while it follows this timeline."""
        return name[:8] != self.timeline or segment_number(name, self.segment_size) <= self.number


def spooled_names(folder: Path) -> list[str]:
    """The segments waiting in the folder (never a temporary: those start with a dot)."""
    try:
        names = [entry.name for entry in folder.iterdir()]
    except FileNotFoundError:
        return []
    return [name for name in names if _SEGMENT.fullmatch(name)]


def read_position(folder: Path) -> Position | None:
    try:
        name, system_id, size = (folder / WANTED).read_text().split()
        return Position(name, int(system_id), int(size)) if _SEGMENT.fullmatch(name) else None
    except (OSError, ValueError):
        return None


def drop_behind(folder: Path, position: Position) -> None:
    for name in spooled_names(folder):
        if position.behind_or_elsewhere(name):
            (folder / name).unlink(missing_ok=True)


def remove_leftovers(folder: Path) -> None:
    """What an earlier worker left (killed, or the machine crashed): half-written files,
    and whole ones written without fsync. Only the lock's new holder may call this."""
    for leftover in folder.glob(f".*{COMING}"):
        leftover.unlink(missing_ok=True)
    for name in spooled_names(folder):
        (folder / name).unlink(missing_ok=True)


def follow(pg_wal: Path, position: Position, worker_argv: list[str]) -> None:
    """After the slow path fetched `position.name` into pg_wal: tell the worker where
    recovery is and drop what it no longer needs; start the worker if none runs."""
    folder = fetch_folder(pg_wal)
    folder.mkdir(mode=0o700, exist_ok=True)
    with atomic_output(folder / WANTED) as output:
        output.write(f"{position.name} {position.system_id} {position.segment_size}\n".encode())
    drop_behind(folder, position)
    if not worker_running(folder):
        start_detached(worker_argv)


def clear_prefetched(pgdata: Path) -> None:
    """Remove pg_wal/jarvis-fetch/ of a data folder whose recovery is over: segments
    fetched ahead that recovery did not need (its worker, if any, sees the folder gone
    and ends)."""
    shutil.rmtree(fetch_folder(Path(pgdata) / "pg_wal"), ignore_errors=True)
