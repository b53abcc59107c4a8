"""What an OS account may do with a path, read from the mode bits (owner, group with the
account's supplementary groups, others; ACLs are not read): reach it (every folder from
/ down searchable), read, write, run. Shared by the checks that PostgreSQL's account can
run our archive_command (`pitr setup`) and restore_command (`restore --pitr --start`).
"""

import os
import pwd
import shlex
import stat
from pathlib import Path

from engines.servers.process import Account

READ, WRITE, RUN = 0o4, 0o2, 0o1


def account_of(uid: int, gid: int) -> Account:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return Account(name, uid, gid)


def may(account: Account, info: os.stat_result, bits: int) -> bool:
    """Whether `account` has `bits` (READ, WRITE, RUN or'ed) on a file or folder."""
    if account.uid == 0:
        return True
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == account.uid:
        return mode >> 6 & bits == bits
    groups = os.getgrouplist(account.name, account.gid) if account.name else [account.gid]
    if info.st_gid in groups:
        return mode >> 3 & bits == bits
    return mode & bits == bits


def closed_to(account: Account, folder: Path) -> Path | None:
    """The first folder from / down to `folder` that `account` may not pass through."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    for place in [*reversed(existing.parents), existing]:
        if not may(account, place.stat(), RUN):
            return place
    return None


def closed_on_the_way(account: Account, program: Path) -> Path | None:
    """The first folder `account` may not pass on the way to `program`: through the folders
    the command names (a link in a closed folder cannot be run, wherever it points) and
    those of the file a link points to."""
    return closed_to(account, program.parent) or closed_to(account, program.resolve().parent)


def command_programs(command: str) -> list[Path]:
    """A command's program (as the command names it) and, for a script, its interpreter
    (symlinks followed)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    if not words or not Path(words[0]).is_absolute():
        return []
    found = [Path(words[0])]
    try:
        with found[0].open("rb") as script:
            first = script.readline(256)
    except OSError:
        return found
    if first.startswith(b"#!") and first[2:].split():
        interpreter = Path(first[2:].split()[0].decode(errors="replace"))
        if interpreter.is_absolute() and interpreter.exists():
            found.append(interpreter.resolve())
    return found
