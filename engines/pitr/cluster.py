"""Which PostgreSQL cluster this is: its system identifier, timeline and version.

WAL and base backups are filed and checked by these three: a segment of another
cluster (another system identifier) or of another major version must never be
mixed into an archive. Read from a live server (`pg_control_system()`) or from a
stopped data folder (`pg_controldata`, of the folder's own major version).
"""

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from engines.errors import JarvisError
from engines.postgres.tools import candidate_bin_dirs

CONTROLDATA_TIMEOUT_S = 30
_SYSTEM_ID = re.compile(r"^Database system identifier:\s+(\d+)\s*$", re.M)
_TIMELINE = re.compile(r"^Latest checkpoint's TimeLineID:\s+(\d+)\s*$", re.M)


class ClusterReadError(JarvisError):
    """The cluster's identity could not be read (folder, tool or server)."""


@dataclass(frozen=True)
class ClusterIdentity:
    system_id: int
    timeline: int
    major: int
    version: str  # "17.2" from a server; the major alone ("17") from a data folder

    @property
    def timeline_hex(self) -> str:
        """The timeline as in WAL file names and the repository layout: 8 upper hex digits."""
        return f"{self.timeline:08X}"


def from_connection(conn: psycopg.Connection) -> ClusterIdentity:
    """The identity of the server behind `conn` (any user may call these functions)."""
    row = conn.execute(
        "SELECT s.system_identifier, current_setting('server_version_num')::int, "
        "current_setting('server_version'), pg_is_in_recovery() FROM pg_control_system() s"
    ).fetchone()
    assert row is not None
    system_id, version_num, version, in_recovery = row
    if in_recovery:
        timeline_row = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()
        assert timeline_row is not None
        timeline = int(timeline_row[0])
    else:
        # The checkpoint's timeline lags just after a promotion; the WAL being written does not.
        name_row = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        assert name_row is not None
        timeline = int(name_row[0][:8], 16)
    return ClusterIdentity(int(system_id), timeline, int(version_num) // 10000, str(version))


def data_folder_major(pgdata: Path) -> int:
    try:
        text = (pgdata / "PG_VERSION").read_text().strip()
    except OSError as error:
        raise ClusterReadError(
            f"{pgdata}: not a PostgreSQL data folder (PG_VERSION: "
            f"{error.strerror or error}); give the cluster's data folder (PGDATA)"
        ) from None
    major = text.split(".")[0]
    if not major.isdigit():
        raise ClusterReadError(f"{pgdata}/PG_VERSION: unexpected content {text[:20]!r}")
    return int(major)


def find_controldata(major: int) -> Path:
    for folder in candidate_bin_dirs():
        tool = folder / "pg_controldata"
        if tool.is_file() and folder.parent.name == str(major):
            return tool
    for folder in candidate_bin_dirs():  # a layout without version in the path
        tool = folder / "pg_controldata"
        if tool.is_file():
            return tool
    raise ClusterReadError(
        f"pg_controldata (PostgreSQL {major}) not found; install the PostgreSQL {major} "
        "server package or put its bin folder on PATH"
    )


def from_data_folder(pgdata: Path) -> ClusterIdentity:
    """The identity recorded in a data folder's pg_control (the server may be stopped)."""
    major = data_folder_major(pgdata)
    tool = find_controldata(major)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        result = subprocess.run(
            [str(tool), "-D", str(pgdata)],
            capture_output=True,
            text=True,
            env=env,
            timeout=CONTROLDATA_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ClusterReadError(f"{tool} -D {pgdata}: {error}") from None
    system_id = _SYSTEM_ID.search(result.stdout)
    timeline = _TIMELINE.search(result.stdout)
    if result.returncode != 0 or not system_id or not timeline:
        reason = (result.stderr.strip().splitlines() or ["unexpected output"])[-1]
        raise ClusterReadError(f"pg_controldata could not read {pgdata}: {reason}")
    return ClusterIdentity(int(system_id.group(1)), int(timeline.group(1)), major, str(major))
