"""Recording data-block positions in an archive pg_dump wrote to a pipe, on real dumps."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from engines.postgres.archive_layout import (
    POSITION_NOT_SET,
    POSITION_SET,
    _file_reader,
    _read_entries,
    _read_header,
    _Reader,
    record_data_positions,
)
from tests.support.pg_seed import seed_database, unique_name
from tests.support.postgres import PostgresServer

# Row lengths whose chunk headers hold zero bytes (256, 65536) next to ordinary rows, an
# empty table between full ones, text with tabs, newlines and backslashes (escaped by
# COPY), and a second large object of binary data full of zero bytes.
AWKWARD_SQL = r"""
CREATE TABLE public.lengths (id int, body text);
INSERT INTO public.lengths SELECT g, repeat('x', 256 - 1 - length(g::text) - 1)
  FROM generate_series(1, 9) AS g;
INSERT INTO public.lengths VALUES (10, repeat('y', 65536 - 4));
CREATE TABLE public.nothing (k int);
CREATE TABLE public.escapes (t text);
INSERT INTO public.escapes VALUES (E'tab\there\nnew line \\ back'), ('');
SELECT lo_from_bytea(0, decode(repeat('00', 70000) || 'ff', 'hex'));
"""


def entry_states(path: Path) -> list[int]:
    with open(path, "rb") as handle:
        reader = _file_reader(handle)
        version, offset_size, _ = _read_header(reader)
        return [entry.state for entry in _read_entries(reader, version, offset_size)]


def dump_through_pipe(server: PostgresServer, database: str, out: Path, *flags: str) -> None:
    env = {**os.environ, **server.env()}
    with open(out, "wb") as handle:
        dump = subprocess.Popen(
            [server.binary("pg_dump"), "--format=custom", *flags, database],
            env=env,
            stdout=subprocess.PIPE,
        )
        assert dump.stdout is not None
        shutil.copyfileobj(dump.stdout, handle)
        assert dump.wait() == 0


def as_sql(server: PostgresServer, archive: Path) -> list[bytes]:
    """The archive as SQL, less psql's per-run random \\restrict key lines."""
    sql = subprocess.run(
        [server.binary("pg_restore"), "--file=-", str(archive)], check=True, capture_output=True
    ).stdout
    return [
        line for line in sql.splitlines() if not line.startswith((b"\\restrict", b"\\unrestrict"))
    ]


@pytest.mark.parametrize("window", [_Reader.WINDOW, 5], ids=["1MiB-reads", "5-byte-reads"])
def test_every_data_block_is_found_and_pg_restore_reads_the_same_archive(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
):
    monkeypatch.setattr(_Reader, "WINDOW", window)  # patterns and fields across read edges
    source = unique_name("offsets")
    seed_database(postgres_server, source)
    postgres_server.execute(AWKWARD_SQL, dbname=source)
    piped = tmp_path / "piped.dump"
    dump_through_pipe(postgres_server, source, piped, "--compress=0")
    states = entry_states(piped)
    assert states.count(POSITION_NOT_SET) >= 6  # what a pipe leaves: nothing recorded

    recorded = tmp_path / "recorded.dump"
    shutil.copy(piped, recorded)
    assert record_data_positions(recorded) == states.count(POSITION_NOT_SET)

    after = entry_states(recorded)
    assert POSITION_NOT_SET not in after
    assert after.count(POSITION_SET) == states.count(POSITION_NOT_SET)
    assert recorded.stat().st_size == piped.stat().st_size
    assert as_sql(postgres_server, recorded) == as_sql(postgres_server, piped)

    copy = unique_name("offsets_copy")
    postgres_server.create_database(copy)
    subprocess.run(
        [postgres_server.binary("pg_restore"), "--jobs=2", "--exit-on-error",
         f"--dbname={copy}", str(recorded)],
        env={**os.environ, **postgres_server.env()},
        check=True,
    )  # fmt: skip
    for table in ("public.lengths", "public.escapes", "app.users", "public.orders"):
        query = f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
        assert postgres_server.execute(query, dbname=copy) == postgres_server.execute(
            query, dbname=source
        )
    objects = "SELECT count(*), sum(length(lo_get(oid))) FROM pg_largeobject_metadata"
    assert postgres_server.execute(objects, dbname=copy) == postgres_server.execute(
        objects, dbname=source
    )


def test_archives_it_does_not_know_are_left_exactly_as_they_were(
    postgres_server: PostgresServer, tmp_path: Path
):
    source = unique_name("offsets_other")
    seed_database(postgres_server, source, users=20, orders=30)
    compressed = tmp_path / "compressed.dump"
    dump_through_pipe(postgres_server, source, compressed)  # pg_dump's own zlib
    plain = tmp_path / "plain.dump"
    dump_through_pipe(postgres_server, source, plain, "--compress=0")
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(plain.read_bytes()[: plain.stat().st_size // 2])
    not_an_archive = tmp_path / "text.sql"
    not_an_archive.write_bytes(b"CREATE TABLE t (k int);\n")
    for path in (compressed, truncated, not_an_archive):
        before = path.read_bytes()
        assert record_data_positions(path) == 0
        assert path.read_bytes() == before
