"""Table data from a streamed archive, loaded by several COPYs into each table at once.

pg_restore loads a table through one COPY, so a database that is mostly one big table
loads on one core however many jobs it is given. Here the archive's COPY text is cut at
row ends into pieces (about a megabyte each, as the artifact inflates) and dealt in
turn to `jobs` connections, each running its own COPY into the table; small tables
land on one connection while the next table starts on another. Every connection is set
up as pg_restore sets up its own (the archive's encoding, string syntax and
search_path; no timeouts; row security off). The rows each COPY reports are added up
per table and must equal the rows the archive holds. Large-object blocks pass through,
as they stand, to a pg_restore that loads them meanwhile.
"""

import contextlib
import queue
import threading
from dataclasses import dataclass, field
from typing import BinaryIO

import psycopg

from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.plumbing.redaction import redact
from engines.postgres import archive_stream
from engines.postgres.archive_layout import Entry, TableOfContents
from engines.postgres.archive_stream import ArchiveWalker, Piece, RawPiece
from engines.postgres.connection import PostgresTarget, connect
from engines.postgres.streamed_archive import StreamedArchive

QUEUE_DEPTH = 3  # pieces waiting per connection: a few megabytes
SESSION_SETTINGS = (  # as pg_restore sets its own session up
    "SET statement_timeout = 0",
    "SET lock_timeout = 0",
    "SET idle_in_transaction_session_timeout = 0",
    "SET check_function_bodies = false",
    "SET xmloption = content",
    "SET client_min_messages = warning",
    "SET row_security = off",
)
ARCHIVE_SETTINGS = ("ENCODING", "STDSTRINGS", "SEARCHPATH")  # entries holding SET statements

_END_OF_TABLE = object()
_STOP = object()


LARGE_OBJECTS = "BLOBS"  # the description of an entry whose data block holds large objects


def loads_in_parallel(toc: TableOfContents) -> bool:
    """True when every data block of the archive is table data this loader can COPY or
    large objects (not data pg_dump compressed, not INSERT statements)."""
    return (
        archive_stream.AVAILABLE
        and not toc.compressed
        and all(_copied(e) or e.desc == LARGE_OBJECTS for e in toc.entries if e.has_data)
    )


def _copied(entry: Entry) -> bool:
    return entry.desc == "TABLE DATA" and bool(entry.copy_statement)


class CopyFailedError(JarvisError):
    """A table's COPY failed on the server; the message names the table."""


@dataclass
class _Connection:
    """One connection and the thread feeding its COPYs from a queue."""

    conn: psycopg.Connection
    name: str
    pieces: queue.Queue = field(default_factory=lambda: queue.Queue(QUEUE_DEPTH))
    rows: dict[int, int] = field(default_factory=dict)  # dump id -> rows its COPYs loaded
    error: BaseException | None = None
    failed_on: Entry | None = None

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        entry = None
        try:
            while (item := self.pieces.get()) is not _STOP:
                entry, text = item
                with self.conn.cursor() as cursor:
                    with cursor.copy(entry.copy_statement.rstrip().rstrip(";")) as copy:
                        copy.write(text)
                        while (more := self.pieces.get()) is not _END_OF_TABLE:
                            if more is _STOP:
                                raise _Abandoned  # leaving the block aborts the COPY
                            copy.write(more[1])
                    self.rows[entry.dump_id] = self.rows.get(entry.dump_id, 0) + cursor.rowcount
        except _Abandoned:
            pass
        except BaseException as error:
            self.error, self.failed_on = error, entry
            while self.pieces.get() is not _STOP:  # keep the feeding side from blocking
                pass


class _Abandoned(Exception):
    """Told to stop in the middle of a table: the load as a whole failed elsewhere."""


def load_table_data(
    server: PostgresTarget,
    database: str,
    archive: StreamedArchive,
    *,
    jobs: int,
    context: JobContext,
    large_objects: BinaryIO | None = None,
) -> dict[str, int]:
    """COPY every table's data from `archive` into `database` over `jobs` connections;
    return the rows loaded per table (`schema.name`), each checked against the archive.
    The bytes of large-object blocks go to `large_objects` (a pg_restore's stdin)."""
    setup = [*SESSION_SETTINGS, *_archive_settings(archive.toc)]
    connections: list[_Connection] = []
    finished = False
    try:
        for number in range(max(1, jobs)):
            conn = connect(server, database)
            try:
                for statement in setup:
                    conn.execute(statement)  # type: ignore[arg-type]  # the archive's own SET
            except BaseException:
                conn.close()
                raise
            connections.append(_Connection(conn, f"copy-{number + 1}"))
        expected = _deal(archive, connections, context, large_objects)
        finished = True
    finally:
        _stop(connections, cancel=not finished)
    for worker in connections:
        if worker.error is not None:
            raise _failure(worker)
    return _checked_rows(expected, connections)


def _deal(
    archive: StreamedArchive,
    connections: list[_Connection],
    context: JobContext,
    large_objects: BinaryIO | None,
) -> dict[int, tuple[Entry, int | None]]:
    """Hand the pieces out in turn; return the rows the archive holds per data block."""
    walker = ArchiveWalker()
    total = archive.metadata.get("plain_size")
    expected: dict[int, tuple[Entry, int | None]] = {}
    turn, fed, carry = 0, 0, b""
    holding: set[int] = set()  # connections inside a COPY of the current table

    def send(index: int, item: object) -> None:
        worker = connections[index]
        while True:
            try:
                worker.pieces.put(item, timeout=0.5)
                return
            except queue.Full:
                if worker.error is not None:
                    raise _failure(worker) from worker.error
                context.raise_if_cancelled()

    for block in archive.plain_blocks():
        for event in _walked(walker, block, archive):
            if isinstance(event, Piece):
                text = carry + event.text if carry else event.text
                cut = text.rfind(b"\n") + 1
                carry = text[cut:]
                if cut:
                    send(turn, (event.entry, text[:cut] if carry else text))
                    holding.add(turn)
                    turn = (turn + 1) % len(connections)
                continue
            if isinstance(event, RawPiece):
                assert large_objects is not None, "large objects but no pg_restore to load them"
                large_objects.write(event.data)
                continue
            if not _copied(event.entry):
                continue
            if carry:  # the last row without its newline: COPY takes it as it is
                send(turn, (event.entry, carry))
                holding.add(turn)
                carry = b""
            for index in sorted(holding):
                send(index, _END_OF_TABLE)
            holding.clear()
            expected[event.entry.dump_id] = (event.entry, event.rows)
        fed += len(block)
        context.progress(fed, total)
        context.raise_if_cancelled()
        for worker in connections:
            if worker.error is not None:
                raise _failure(worker) from worker.error
    _walked(walker, None, archive)
    return expected


def _walked(walker: ArchiveWalker, block: bytes | None, archive: StreamedArchive) -> list:
    """The events of `block` (None: the end of the stream); an archive the walker cannot
    follow is an IntegrityError naming the artifact."""
    try:
        if block is None:
            walker.finish()
            return []
        return walker.feed(block)
    except ValueError as error:
        raise IntegrityError(f"{archive.resolved.label}: {error}") from None


def _stop(connections: list[_Connection], *, cancel: bool) -> None:
    """End every thread and close every connection. After a failure (`cancel`) the COPYs
    in flight are aborted and what still waits in the queues is dropped."""
    for worker in connections:
        if not cancel:
            worker.pieces.put(_STOP)  # after everything queued: the thread is taking them
            continue
        with contextlib.suppress(Exception):
            worker.conn.cancel()
        while True:
            try:
                worker.pieces.put_nowait(_STOP)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    worker.pieces.get_nowait()
    for worker in connections:
        worker.thread.join()
        worker.conn.close()


def _archive_settings(toc: TableOfContents) -> list[str]:
    return [e.definition for e in toc.entries if e.desc in ARCHIVE_SETTINGS and e.definition]


def _failure(worker: _Connection) -> JarvisError:
    entry = worker.failed_on
    table = f"{entry.schema}.{entry.tag}" if entry else "a table"
    detail = redact(str(worker.error)).strip().splitlines()
    return CopyFailedError(f"loading {table} failed: {' | '.join(detail[:3])}")


def _checked_rows(
    expected: dict[int, tuple[Entry, int | None]], connections: list[_Connection]
) -> dict[str, int]:
    loaded: dict[str, int] = {}
    for dump_id, (entry, rows) in expected.items():
        table = f"{entry.schema}.{entry.tag}"
        copied = sum(worker.rows.get(dump_id, 0) for worker in connections)
        if rows is not None and copied != rows:
            raise IntegrityError(f"{table}: COPY loaded {copied} rows, the archive holds {rows}")
        loaded[table] = copied
    return loaded
