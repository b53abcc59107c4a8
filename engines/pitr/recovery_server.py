"""`restore postgres --pitr --start --port N`: PostgreSQL started on the restored folder, as
the folder's owner, from the installed server of the backup's major version (the bin
folder pg_basebackup comes from), detached so it outlives jarvis-tui.

This start alone logs everything to <pgdata>/log/jarvis-recovery.log in English
(logging_collector off, lc_messages C), so recovery's outcome can be read from it; the
socket goes into the configured folders and the data folder (where we ask it; a short
folder of its own under /tmp when that path would be too long for a socket). It gets a
service's environment, not the restorer's: no BACKUP_* secret reaches the server.
"""

import contextlib
import os
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engines.errors import JarvisError
from engines.postgres.tools import candidate_bin_dirs
from engines.servers.process import Account, credentials

LOG_NAME = "log/jarvis-recovery.log"
SOCKET_PATH_LIMIT = 107  # sun_path, less its terminating zero
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class RecoveryServer:
    process: subprocess.Popen
    pgdata: Path
    port: int
    owner: Account
    bin_dir: Path
    log_path: Path
    socket_dir: Path  # where we ask it: the data folder, or a short private folder

    @property
    def major(self) -> int:
        return _major_of(self.pgdata)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def environment(self) -> dict[str, str]:
        return service_environment(self.owner)


def server_bin_dir(major: int) -> Path:
    """The installed server (postgres, psql) of the backup's major version."""
    for folder in candidate_bin_dirs():
        if _major_of_bin(folder) == major and all(
            (folder / name).is_file() for name in ("postgres", "psql")
        ):
            return folder
    raise JarvisError(
        f"--start: the PostgreSQL {major} server is not installed (no postgres {major} "
        f"beside pg_basebackup); install it (Debian/Ubuntu: apt-get install postgresql-{major}) "
        "or start the restored folder yourself"
    )


def refuse_unless_port_free(port: int) -> None:
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise JarvisError(
                f"--start: port {port} is taken (something answers on 127.0.0.1:{port}); "
                "name a free port with --port"
            )


def start_server(pgdata: Path, port: int, owner: Account, bin_dir: Path) -> RecoveryServer:
    log_path = pgdata / LOG_NAME
    log_path.parent.mkdir(mode=0o700, exist_ok=True)
    sockets = _configured_sockets(pgdata, owner, bin_dir)
    ours = _socket_dir(pgdata, port, owner)
    argv = [
        str(bin_dir / "postgres"), "-D", str(pgdata), "-p", str(port),
        "-c", f"unix_socket_directories={','.join([*sockets, str(ours)])}",
        "-c", "logging_collector=off", "-c", "log_destination=stderr", "-c", "lc_messages=C",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        with contextlib.suppress(PermissionError):
            os.chown(log_path, owner.uid, owner.gid)
            os.chown(log_path.parent, owner.uid, owner.gid)
        try:
            process = subprocess.Popen(
                argv, cwd=pgdata, env=service_environment(owner), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True, **_as(owner),
            )  # fmt: skip
        except OSError as error:
            raise JarvisError(f"--start: could not run {argv[0]}: {error.strerror}") from None
    return RecoveryServer(process, pgdata, port, owner, bin_dir, log_path, ours)


def _socket_dir(pgdata: Path, port: int, owner: Account) -> Path:
    """The data folder, unless its socket's path would pass the kernel's limit: then a
    short owner-only folder of its own under /tmp."""
    if len(f"{pgdata}/.s.PGSQL.{port}") < SOCKET_PATH_LIMIT:
        return pgdata
    folder = Path(tempfile.mkdtemp(prefix="jarvis-recovery-", dir="/tmp"))
    with contextlib.suppress(PermissionError):
        os.chown(folder, owner.uid, owner.gid)
    return folder


def service_environment(owner: Account) -> dict[str, str]:
    home = _home_of(owner)
    return {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "LC_ALL": "C",
        "HOME": home,
        "USER": owner.name,
        "LOGNAME": owner.name,
    }


def run_as(owner: Account, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """A PostgreSQL tool as the folder's owner (peer authentication knows that account)."""
    return subprocess.run(
        argv, env=kwargs.pop("env", service_environment(owner)), capture_output=True,
        text=True, **_as(owner), **kwargs,
    )  # fmt: skip


def _configured_sockets(pgdata: Path, owner: Account, bin_dir: Path) -> list[str]:
    """The socket folders the folder's own configuration names (kept: a client finds the
    server where it expects it), those that exist."""
    try:
        found = run_as(
            owner, [str(bin_dir / "postgres"), "-D", str(pgdata), "-C", "unix_socket_directories"],
            cwd=pgdata, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    if found.returncode != 0:
        return []
    folders = [word.strip() for word in found.stdout.strip().split(",") if word.strip()]
    return [folder for folder in folders if Path(folder).is_dir()]


def _as(owner: Account) -> dict:
    return credentials(owner) if os.geteuid() == 0 else {}


def _home_of(owner: Account) -> str:
    import pwd

    try:
        return pwd.getpwuid(owner.uid).pw_dir
    except KeyError:
        return "/"


def _major_of(pgdata: Path) -> int:
    text = (pgdata / "PG_VERSION").read_text().strip()
    return int(text) if text.isdigit() else 0


def _major_of_bin(folder: Path) -> int | None:
    """From the folder's name (/usr/lib/postgresql/15/bin), else `postgres --version`."""
    if folder.parent.name.isdigit():
        return int(folder.parent.name)
    try:
        found = subprocess.run(
            [str(folder / "postgres"), "--version"], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return None
    words = found.stdout.split()
    return int(words[-1].split(".")[0]) if words and words[-1][:1].isdigit() else None
