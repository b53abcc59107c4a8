"""Who a restored data folder belongs to, and so who runs PostgreSQL on it.

PostgreSQL never runs as root. Run by root, a restore gives the laid-out folder to the
owner of the empty folder named, else of its parent folder (a folder made under
/var/lib/postgresql/15 belongs to postgres); run by anyone else it stays theirs. The
server is started as that owner, who must reach the folder and run restore_command.
"""

import os
from pathlib import Path

from engines.errors import JarvisError
from engines.pitr.account_access import (
    READ,
    RUN,
    account_of,
    closed_on_the_way,
    closed_to,
    command_programs,
    may,
)
from engines.servers.process import Account, chown_tree

ROOT_HINT = (
    "make the empty folder (or its parent folder) belong to the account that runs "
    "PostgreSQL, e.g. `install -d -o postgres -g postgres -m 700 {pgdata}`, then restore again"
)


def owner_for(pgdata: Path) -> Account:
    """The account the laid-out folder will belong to."""
    if os.geteuid() != 0:
        return account_of(os.geteuid(), os.getegid())
    place = pgdata if pgdata.exists() else pgdata.parent
    info = place.stat() if place.exists() else os.stat("/")
    return account_of(info.st_uid, info.st_gid)


def hand_over(pgdata: Path, owner: Account) -> None:
    """Under root: the laid-out tree to its owner (files staged by root otherwise)."""
    if os.geteuid() != 0 or owner.uid == 0:
        return
    chown_tree(pgdata, owner)


def refuse_unless_startable(pgdata: Path, owner: Account, command: str) -> None:
    """--start: one line naming why the owner could not run the server, before anything
    is written."""
    if owner.uid == 0:
        raise JarvisError(
            f"--start: {pgdata} would belong to root, and PostgreSQL refuses to run as root; "
            + ROOT_HINT.format(pgdata=pgdata)
        )
    closed = closed_to(owner, pgdata.parent)
    if closed is not None:
        raise JarvisError(
            f"--start: account {owner.name} cannot reach {pgdata} ({closed} is closed to it); "
            "restore into a folder it can reach"
        )
    for program in command_programs(command):
        closed = closed_on_the_way(owner, program)
        if closed is not None or not may(owner, program.stat(), READ | RUN):
            raise JarvisError(
                f"--start: account {owner.name} cannot run {program} ({closed or program} is "
                "closed to it), which restore_command needs; install jarvis-tui where "
                f"{owner.name} can run it (not under a private home folder), then restore again"
            )
