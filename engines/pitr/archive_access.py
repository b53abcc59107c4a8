"""Can PostgreSQL's account run our archive_command? Its archiver runs `jarvis-tui
--env-file F wal-push %p` as the account that owns the data folder, which often cannot
reach what the operator's own account can: a virtual environment made with a Python
under /root (pyenv), an env file readable by root alone, a repository of 0700 folders.
Each problem is one line naming the path and what to do; `pitr setup --apply` refuses
while there is one (engines/actions/pitr_setup.py).

Read from the mode bits (engines/pitr/account_access.py), for this host: a server whose
data folder is elsewhere runs archive_command there, which this host cannot check.
"""

import grp
import os
import shlex
from pathlib import Path

import psycopg

from engines.pitr.account_access import (
    READ,
    RUN,
    WRITE,
    account_of,
    closed_on_the_way,
    closed_to,
    command_programs,
    may,
)
from engines.pitr.archive_layout import WAL_FOLDER
from engines.repository.repository_id import ID_FILE
from engines.servers.process import Account

CODE = Path(__file__).resolve().parent.parent  # the program's own code (engines/)


def server_account(conn: psycopg.Connection) -> tuple[Account | None, str]:
    """The account that runs the server (its data folder's owner), or None and why not."""
    hidden = "its data folder is not shown to this user (connect as a superuser)"
    try:
        row = conn.execute("SELECT current_setting('data_directory', true)").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        return None, hidden
    if row is None or not row[0]:
        return None, hidden
    pgdata = Path(row[0])
    try:
        info = pgdata.stat()
    except OSError:
        return None, f"its data folder {pgdata} is not on this host; check on the server's host"
    return account_of(info.st_uid, info.st_gid), ""


def env_file_of(command: str) -> Path | None:
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if "--env-file" in words[:-1]:
        return Path(words[words.index("--env-file") + 1])
    return None


def archive_command_problems(account: Account, command: str, repository: Path) -> list[str]:
    """One line per thing `account` lacks to run `command` (wal-push into `repository`)."""
    who = f"PostgreSQL's account {account.name}"
    problems = []
    programs = command_programs(command)
    for number, program in enumerate(programs):
        what = "jarvis-tui" if number == 0 else f"the Python {programs[0].name} starts with"
        closed = closed_on_the_way(account, program)
        if closed is not None:
            problems.append(
                f"{who} cannot run {what}, {program}: {closed} is closed to it; chmod o+x "
                f"{closed}, or install jarvis-tui in a virtual environment of the system "
                "Python outside it (e.g. /usr/bin/python3 -m venv /opt/jarvis)"
            )
        elif not may(account, program.stat(), READ | RUN):
            problems.append(f"{who} cannot run {what}, {program}: chmod o+rx {program}")
    closed = closed_to(account, CODE)
    if programs and closed is not None and not any(closed in p.parents for p in programs):
        problems.append(
            f"{who} cannot read jarvis-tui's code in {CODE}: {closed} is closed to it; chmod "
            f"o+x {closed}, or install jarvis-tui outside it (e.g. /opt/jarvis)"
        )
    env_file = env_file_of(command)
    if env_file is not None:
        problems += _env_file_problems(account, who, env_file)
    problems += _repository_problems(account, who, repository)
    return problems


def _env_file_problems(account: Account, who: str, env_file: Path) -> list[str]:
    closed = closed_to(account, env_file.parent)
    if closed is not None:
        return [
            f"{who} cannot read the env file {env_file}: {closed} is closed to it; chmod o+x "
            f"{closed}, or keep the env file in a folder it can reach (e.g. /etc/jarvis)"
        ]
    try:
        readable = may(account, env_file.stat(), READ)
    except OSError:
        return [f"the env file {env_file} does not exist; name an existing one with --env-file"]
    if readable:
        return []
    group = _group_name(account.gid)
    return [
        f"{who} cannot read the env file {env_file} (it holds the encryption key, so not for "
        f"everyone): chgrp {group} {env_file} && chmod 640 {env_file}"
    ]


def _repository_problems(account: Account, who: str, repository: Path) -> list[str]:
    """wal-push creates wal/<system id>/<timeline>/ and reads what it stored before."""
    closed = closed_to(account, repository)
    if closed is not None:
        return [
            f"{who} cannot reach the repository {repository}: {closed} is closed to it; "
            f"chmod o+x {closed}, or move BACKUP_DIR to a folder it can reach"
        ]
    identity = repository / ID_FILE  # read by every wal-push
    if identity.exists() and not may(account, identity.stat(), READ):
        return [
            f"{who} cannot read {identity}, which names the repository (no secret): "
            f"chmod o+r {identity}"
        ]
    wal = repository / WAL_FOLDER
    folders = [repository] if not wal.exists() else [wal, *_folders_below(wal)]
    for folder in folders:
        if not may(account, folder.stat(), READ | WRITE | RUN):
            fix = f"chown -R {account.name} {wal}"
            if not wal.exists():
                fix = f"mkdir {wal} && chown {account.name} {wal}"
            return [f"{who} cannot write into {folder} in the repository: {fix}"]
    return []


def _folders_below(folder: Path) -> list[Path]:
    return [Path(top) / name for top, dirs, _ in os.walk(folder) for name in dirs]


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
