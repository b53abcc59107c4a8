"""`pitr setup` checks that PostgreSQL's account can run archive_command on this host (issue
#16): a real cluster run by the unprivileged account (tests run under root), with
jarvis-tui's Python under /root, an env file only root reads, a repository it cannot reach
or write into; each problem one line naming the path and what to do; `--apply` refuses
with exit 1 and changes nothing."""

import grp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from engines.pipeline.crypto import generate_key_hex
from engines.pitr.account_access import account_of
from engines.pitr.archive_access import archive_command_problems, server_account
from engines.servers.process import reachable_by
from tests.support.postgres import PostgresServer
from tests.test_pitr_archive import JARVIS, SYSTEM_PYTHON

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs PostgreSQL run by another account")


class Host:
    def __init__(self, root: Path, pg: PostgresServer) -> None:
        self.root = root
        self.pg = pg
        self.account = pg.account
        assert self.account is not None

    def env_file(self, name: str, repository: Path, mode: int = 0o644) -> Path:
        path = self.root / name
        path.write_text(
            f"BACKUP_DIR={repository}\nBACKUP_CATALOG_PATH={self.root / 'catalog.db'}\n"
            f"BACKUP_LOG_DIR={self.root / 'logs'}\nBACKUP_ENCRYPTION_KEY={generate_key_hex()}\n"
            f"DATABASE_URL={self.pg.url()}\n"
        )
        path.chmod(mode)
        return path

    def setup(self, env_file: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [JARVIS, "--env-file", str(env_file), "pitr", "setup", *args],
            capture_output=True, text=True, timeout=120, cwd=self.root,
        )  # fmt: skip

    def archive_command(self) -> str:
        return self.pg.execute("SHOW archive_command")[0][0]


@pytest.fixture(scope="module")
def host():
    root = Path(tempfile.mkdtemp(prefix="jarvis-access-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        with PostgresServer() as pg:
            yield Host(root, pg)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _repository(host: Host, name: str) -> Path:
    """A repository the server's account owns (as `chown -R postgres` leaves it)."""
    folder = host.root / name
    (folder / "wal").mkdir(parents=True)
    host.pg.give_access(folder)
    return folder


def test_a_python_under_root_is_named_and_apply_refuses(host: Host) -> None:
    python = Path(sys.executable).resolve()
    if reachable_by(host.account, python):
        pytest.skip(f"{python} is reachable by {host.account.name} here")
    closed = next(p for p in python.parents if p.parent != p and not p.stat().st_mode & 0o001)
    env_file = host.env_file("jarvis.env", _repository(host, "repository"))
    before = host.archive_command()
    printed = host.setup(env_file)
    assert printed.returncode == 0, printed.stderr
    line = (
        f"# problem: PostgreSQL's account {host.account.name} cannot run the Python jarvis-tui "
        f"starts with, {python}: {closed} is closed to it; chmod o+x {closed}, or install "
        "jarvis-tui in a virtual environment of the system Python outside it"
    )
    assert line in printed.stdout
    assert "archive_command = " in printed.stdout  # the settings are printed all the same
    applied = host.setup(env_file, "--apply")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert f"cannot run the Python jarvis-tui starts with, {python}" in applied.stderr
    assert "nothing was applied" in applied.stderr and "Traceback" not in applied.stderr
    assert host.archive_command() == before  # nothing was written
    forced = host.setup(env_file, "--apply", "--force")  # an ACL may grant what bits do not
    assert forced.returncode == 0, forced.stderr
    assert host.archive_command().endswith(f"--env-file {env_file} wal-push %p")


def test_an_env_file_only_root_reads_and_a_closed_repository_are_named(host: Host) -> None:
    account = host.account
    closed = host.root / "private"
    closed.mkdir(mode=0o700)
    repository = closed / "repository"
    secret_env = host.env_file("secret.env", repository, mode=0o600)
    printed = host.setup(secret_env)
    assert printed.returncode == 0, printed.stderr
    problems = [line for line in printed.stdout.splitlines() if line.startswith("# problem:")]
    group = grp.getgrgid(account.gid).gr_name
    assert (
        f"# problem: PostgreSQL's account {account.name} cannot read the env file {secret_env} "
        f"(it holds the encryption key, so not for everyone): chgrp {group} {secret_env} && "
        f"chmod 640 {secret_env}"
    ) in problems
    assert (
        f"# problem: PostgreSQL's account {account.name} cannot reach the repository "
        f"{repository}: {closed} is closed to it; chmod o+x {closed}, or move BACKUP_DIR to a "
        "folder it can reach"
    ) in problems
    before = host.archive_command()
    applied = host.setup(secret_env, "--apply")
    assert applied.returncode == 1 and f"cannot read the env file {secret_env}" in applied.stderr
    assert host.archive_command() == before


def test_a_wal_folder_it_cannot_write_and_a_command_it_can_run(host: Host) -> None:
    account = account_of(host.account.uid, host.account.gid)
    repository = _repository(host, "shared")
    env_file = host.env_file("shared.env", repository)
    if not reachable_by(host.account, SYSTEM_PYTHON.resolve()):
        pytest.skip("no system Python the server's account can run")
    command = f"{SYSTEM_PYTHON} -m jarvis_tui.launch --env-file {env_file} wal-push %p"
    code = Path(__file__).resolve().parent.parent
    if not reachable_by(host.account, code):
        pytest.skip(f"{code} is not reachable by {account.name}")
    assert archive_command_problems(account, command, repository) == []
    timeline = repository / "wal" / "7000000000000000001" / "00000001"
    timeline.mkdir(parents=True)  # made by root: the server's account cannot write there
    timeline.parent.chmod(0o755)
    timeline.chmod(0o755)
    assert archive_command_problems(account, command, repository) == [
        f"PostgreSQL's account {account.name} cannot write into {timeline.parent} in the "
        f"repository: chown -R {account.name} {repository / 'wal'}"
    ]
    shutil.rmtree(repository / "wal")
    repository.chmod(0o755)
    os.chown(repository, 0, 0)
    assert archive_command_problems(account, command, repository) == [
        f"PostgreSQL's account {account.name} cannot write into {repository} in the "
        f"repository: mkdir {repository / 'wal'} && chown {account.name} {repository / 'wal'}"
    ]


def test_a_user_who_may_not_see_the_data_folder_is_told_so(host: Host) -> None:
    host.pg.execute("DROP ROLE IF EXISTS jarvis_plain; CREATE ROLE jarvis_plain LOGIN")
    url = host.pg.url().replace(f"//{host.pg.user}@", "//jarvis_plain@")
    with psycopg.connect(url, autocommit=True) as conn:
        assert server_account(conn) == (
            None,
            "its data folder is not shown to this user (connect as a superuser)",
        )
    with psycopg.connect(host.pg.url(), autocommit=True) as conn:
        account, _ = server_account(conn)
    assert account is not None and account.uid == host.account.uid
