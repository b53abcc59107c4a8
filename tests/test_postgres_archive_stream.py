"""ArchiveWalker on real pg_dump output: each table's COPY text, byte for byte what the
server's COPY gives, and its row count, however the stream is cut into blocks."""

import random
import subprocess
from pathlib import Path

import psycopg
import pytest

from engines.postgres.archive_layout import read_table_of_contents
from engines.postgres.archive_stream import AVAILABLE, ArchiveWalker, Piece, RawPiece
from tests.support.pg_seed import seed_database, unique_name
from tests.support.postgres import PostgresServer
from tests.test_postgres_archive_layout import AWKWARD_SQL, dump_through_pipe

# Rows that look like the end of the data or hide it: a value that is a backslash and a
# dot, one ending in a backslash, empty strings (an empty line each) last, and a table
# whose only row is an empty line.
MARKERS_SQL = r"""
CREATE TABLE public.markers (id int, t text);
INSERT INTO public.markers VALUES (1, E'\\.'), (2, E'a\\'), (3, E'\\.\n\n'), (4, ''), (5, '');
CREATE TABLE public.one_empty (t text);
INSERT INTO public.one_empty VALUES ('');
"""

COPY_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2
"""


def test_the_c_walker_is_built() -> None:
    assert AVAILABLE, "engines/postgres/_archive_chunks.c was not built (pip install -e .)"


@pytest.fixture(scope="module")
def awkward_dump(postgres_server: PostgresServer, tmp_path_factory) -> tuple[bytes, dict]:
    """A piped, uncompressed dump and, per table, the server's own COPY text."""
    source = unique_name("stream")
    seed_database(postgres_server, source)
    postgres_server.execute(AWKWARD_SQL + MARKERS_SQL, dbname=source)
    path = tmp_path_factory.mktemp("stream") / "piped.dump"
    dump_through_pipe(postgres_server, source, path, "--compress=0")
    expected = {}
    with psycopg.connect(postgres_server.dsn(source)) as conn:
        for schema, name in conn.execute(COPY_TABLES).fetchall():
            with conn.cursor().copy(f'COPY "{schema}"."{name}" TO STDOUT') as copy:
                expected[(schema, name)] = b"".join(bytes(block) for block in copy)
    return path.read_bytes(), expected


def walk(archive: bytes, sizes) -> tuple[dict, dict]:
    walker = ArchiveWalker()
    texts: dict[tuple[str, str], bytearray] = {}
    rows: dict[tuple[str, str], int | None] = {}
    at = 0
    while at < len(archive):
        size = next(sizes)
        for event in walker.feed(archive[at : at + size]):
            table = (event.entry.schema, event.entry.tag)
            if isinstance(event, Piece):
                assert table not in rows, "text after the end of its block"
                texts.setdefault(table, bytearray()).extend(event.text)
            elif event.entry.desc == "TABLE DATA":
                rows[table] = event.rows
        at += size
    walker.finish()
    return {table: bytes(text) for table, text in texts.items()}, rows


@pytest.mark.parametrize(
    "cut",
    ["1MiB", "7-bytes", "random"],
)
def test_every_table_comes_out_as_copy_gives_it(awkward_dump, cut: str) -> None:
    archive, expected = awkward_dump
    rng = random.Random(5)
    sizes = {
        "1MiB": iter(lambda: 1024 * 1024, None),
        "7-bytes": iter(lambda: 7, None),
        "random": iter(lambda: rng.choice((1, 2, 5, 6, 300, 70_000)), None),
    }[cut]
    texts, rows = walk(archive, sizes)
    assert set(rows) == set(expected)
    for table, text in expected.items():
        assert texts.get(table, b"") == text, table
        assert rows[table] == text.count(b"\n"), table
    assert rows[("public", "markers")] == 5
    assert rows[("public", "one_empty")] == 1
    assert rows[("public", "nothing")] == 0


def test_a_stream_cut_short_is_an_error(awkward_dump) -> None:
    archive, _ = awkward_dump
    toc = read_table_of_contents(archive)
    assert toc is not None
    for end in (toc.end // 2, toc.end + 20, len(archive) // 2, len(archive) - 1):
        walker = ArchiveWalker()
        walker.feed(archive[:end])
        with pytest.raises(ValueError, match="ends inside"):
            walker.finish()


def test_a_negative_chunk_length_is_an_error(awkward_dump) -> None:
    archive, _ = awkward_dump
    toc = read_table_of_contents(archive)
    assert toc is not None
    first_chunk_sign = toc.end + 1 + 1 + toc.int_size  # after the first block's header
    damaged = bytearray(archive)
    damaged[first_chunk_sign] = 1
    with pytest.raises(ValueError, match="negative"):
        ArchiveWalker().feed(bytes(damaged))


def test_an_archive_compressed_by_pg_dump_is_refused(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    source = unique_name("stream_zlib")
    seed_database(postgres_server, source, users=5, orders=5)
    path = tmp_path / "zlib.dump"
    dump_through_pipe(postgres_server, source, path)
    with pytest.raises(ValueError, match="compressed"):
        ArchiveWalker().feed(path.read_bytes())


def test_large_object_blocks_pass_through_as_pg_restore_reads_them(
    postgres_server: PostgresServer, awkward_dump, tmp_path: Path
) -> None:
    """The table of contents and the raw large-object blocks alone make a stream from
    which pg_restore writes the same large objects as from the whole archive."""
    archive, _ = awkward_dump
    toc = read_table_of_contents(archive)
    assert toc is not None
    raw = bytearray()
    walker = ArchiveWalker()
    rng = random.Random(7)
    at = 0
    while at < len(archive):
        size = rng.choice((3, 64, 4096, 100_000))
        raw += b"".join(
            e.data for e in walker.feed(archive[at : at + size]) if isinstance(e, RawPiece)
        )
        at += size
    walker.finish()
    objects = [e for e in toc.entries if e.desc == "BLOBS"]
    assert len(objects) == 1 and raw
    listing = tmp_path / "objects.list"
    listing.write_text(f"{objects[0].dump_id};\n")

    def objects_sql(stream: bytes) -> list[bytes]:
        sql = subprocess.run(
            [postgres_server.binary("pg_restore"), "--section=data", f"--use-list={listing}",
             "--file=-"],
            input=stream, check=True, capture_output=True,
        ).stdout  # fmt: skip
        # Less pg_restore's per-run random \\restrict key lines.
        return [
            line
            for line in sql.splitlines()
            if not line.startswith((b"\\restrict", b"\\unrestrict"))
        ]

    whole = objects_sql(archive)
    assert any(b"lo_open" in line for line in whole)
    assert sum(map(len, whole)) > 140_000  # 70,001 bytes of one object, hex-escaped
    assert objects_sql(archive[: toc.end] + bytes(raw)) == whole
