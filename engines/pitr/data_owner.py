"""Who a restored data folder belongs to, and so who runs PostgreSQL on it.

PostgreSQL never runs as root. Run by root, a restore gives the laid-out folder to the
owner of the empty folder named, else of its parent folder (a folder made under
/var/lib/postgresql/15 belongs to postgres); run by anyone else it stays theirs. The
server is started as that owner, who must reach the folder and run restore_command.
"""

import os
import pwd
import shlex
import stat
from pathlib import Path

from engines.errors import JarvisError
from engines.servers.process import Account

ROOT_HINT = (
    "make the empty folder (or its parent folder) belong to the account that runs "
    "PostgreSQL, e.g. `install -d -o postgres -g postgres -m 700 {pgdata}`, then restore again"
)


def owner_for(pgdata: Path) -> Account:
    """The account the laid-out folder will belong to."""
    if os.geteuid() != 0:
        return _account(os.geteuid(), os.getegid())
    place = pgdata if pgdata.exists() else pgdata.parent
    info = place.stat() if place.exists() else os.stat("/")
    return _account(info.st_uid, info.st_gid)


def hand_over(pgdata: Path, owner: Account) -> None:
    """Under root: the laid-out tree to its owner (files staged by root otherwise)."""
    if os.geteuid() != 0 or owner.uid == 0:
        return
    os.lchown(pgdata, owner.uid, owner.gid)
    for folder, dirs, files in os.walk(pgdata):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), owner.uid, owner.gid)


def refuse_unless_startable(pgdata: Path, owner: Account, command: str) -> None:
    """--start: one line naming why the owner could not run the server, before anything
    is written."""
    if owner.uid == 0:
        raise JarvisError(
            f"--start: {pgdata} would belong to root, and PostgreSQL refuses to run as root; "
            + ROOT_HINT.format(pgdata=pgdata)
        )
    closed = _closed_to(owner, pgdata.parent)
    if closed is not None:
        raise JarvisError(
            f"--start: account {owner.name} cannot reach {pgdata} ({closed} is closed to it); "
            "restore into a folder it can reach"
        )
    for program in _programs(command):
        closed = _closed_to(owner, program.parent)
        if closed is not None or not _may(owner, program.stat(), 0o5):
            raise JarvisError(
                f"--start: account {owner.name} cannot run {program} ({closed or program} is "
                "closed to it), which restore_command needs; install jarvis-tui where "
                f"{owner.name} can run it (not under a private home folder), then restore again"
            )


def _programs(command: str) -> list[Path]:
    """restore_command's program (symlinks followed) and, for a script, its interpreter."""
    words = shlex.split(command)
    if not words or not Path(words[0]).is_absolute():
        return []
    found = [Path(words[0]).resolve()]
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


def _closed_to(account: Account, folder: Path) -> Path | None:
    """The first folder from / down to `folder` that `account` may not pass through."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    for place in [*reversed(existing.parents), existing]:
        if not _may(account, place.stat(), 0o1):
            return place
    return None


def _may(account: Account, info: os.stat_result, bits: int) -> bool:
    """Whether `account` has `bits` (rwx as 0o4/0o2/0o1) on a file or folder."""
    if account.uid == 0:
        return True
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == account.uid:
        return mode >> 6 & bits == bits
    groups = os.getgrouplist(account.name, account.gid) if account.name else [account.gid]
    if info.st_gid in groups:
        return mode >> 3 & bits == bits
    return mode & bits == bits


def _account(uid: int, gid: int) -> Account:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return Account(name, uid, gid)
