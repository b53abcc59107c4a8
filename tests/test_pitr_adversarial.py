"""Adversarial checks of the point-in-time recovery parts (issue #16): inputs an operator
mistypes or an attacker forges, each of which once gave a wrong answer."""

from pathlib import Path

import pytest

from engines.errors import JarvisError
from engines.pitr.archiving import runs_wal_push
from engines.pitr.restore_pitr import write_recovery
from engines.pitr.restore_target import parse_target
from tests.support.postgres import PostgresServer


@pytest.mark.parametrize(
    "command",
    [
        "true jarvis-tui wal-push %p",
        "echo jarvis-tui wal-push %p",
        "sh -c 'exit 0' jarvis-tui wal-push %p",
        "rm -rf x; jarvis-tui wal-push %p",
        "false && jarvis-tui wal-push %p",
        "cp %p /elsewhere/%f || jarvis-tui wal-push %p",
        "jarvis-tui wal-push %p&",
        "jarvis-tui wal-push $(rm -rf x) %p",
        "jarvis-tui wal-push `rm -rf x` %p",
        "jarvis-tui wal-fetch wal-push %p",
        "jarvis-tui wal-push /tmp/other %p",
        "jarvis-tui --browse s3:other wal-push %p",
    ],
)
def test_a_command_that_does_not_run_only_our_wal_push_is_not_ours(command: str) -> None:
    """The scheduled base backup and the watch's window trust this: a command that echoes
    our words, or runs wal-push only after something else, archives nothing here."""
    assert runs_wal_push(command) is False


@pytest.mark.parametrize(
    "command",
    [
        "env PYTHONPATH=/a:/b /usr/bin/python3.11 -m jarvis_tui.launch --env-file /t/j.env "
        "wal-push %p",
        "jarvis-tui --env-file=/etc/jarvis.env wal-push %p",
        "PATH=/opt/bin jarvis-tui wal-push %p",
    ],
)
def test_our_wal_push_however_started_is_ours(command: str) -> None:
    assert runs_wal_push(command) is True


@pytest.mark.parametrize(
    "name", ["before\\upgrade", "it's\\'done", "trailing\\", "C:\\temp\\tables"]
)
def test_a_restore_point_name_with_backslashes_reaches_postgresql_unchanged(
    postgres_server: PostgresServer, tmp_path: Path, name: str
) -> None:
    """PostgreSQL reads backslash escapes in a configuration string ('\\u' is 'u'): the name
    written unescaped was another name (recovery then ran past it to the end of the WAL)
    or no string at all. Read back by the server itself through pg_file_settings."""
    target = parse_target("name", name, "pause", "jarvis-tui wal-fetch %f %p")
    write_recovery(tmp_path, target)
    auto = postgres_server.data_dir / "postgresql.auto.conf"
    kept = auto.read_text()
    try:
        with open(auto, "w") as handle:  # keeps the server account's file
            handle.write((tmp_path / "postgresql.auto.conf").read_text())
        rows = postgres_server.execute(  # a syntax error is a row without a name
            "SELECT name, setting FROM pg_file_settings "
            "WHERE name = 'recovery_target_name' OR name IS NULL"
        )
    finally:
        with open(auto, "w") as handle:
            handle.write(kept)
    assert rows == [("recovery_target_name", name)]


@pytest.mark.parametrize("name", ["two\nlines", "carriage\rreturn"])
def test_a_restore_point_name_postgresql_cannot_read_from_its_configuration_is_refused(
    name: str,
) -> None:
    with pytest.raises(JarvisError, match="restore point") as refused:
        parse_target("name", name, "pause", "jarvis-tui wal-fetch %f %p")
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("xid", ["²", "١٢٣", "99999999999999999999999"])
def test_a_transaction_id_postgresql_would_not_take_is_refused(xid: str) -> None:
    with pytest.raises(JarvisError, match="target transaction"):
        parse_target("xid", xid, "pause", "jarvis-tui wal-fetch %f %p")


def test_an_lsn_is_written_as_postgresql_takes_it() -> None:
    assert parse_target("lsn", " 0/3000148 ", "pause", "x").value == "0/3000148"
