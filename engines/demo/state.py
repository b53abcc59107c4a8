"""The demo's state file (`demo.json` in its folder): where its servers live and which
processes they are. Its presence is also what marks a folder as a demo's, the only kind
`jarvis-tui demo --stop` removes.

The file is only a hint: `--stop` signals a recorded process only if it is still the
very process the demo started (its start token) and works inside the demo's servers
folder, and removes a servers folder only where `start_demo` puts one. A damaged or
forged demo.json naming someone else's processes or folders changes nothing of theirs.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from engines.plumbing.fsutil import atomic_output
from engines.plumbing.processes import owner_gone

STATE_FILE = "demo.json"
SERVERS_IN_TMP = "jarvis-demo-servers-"  # where the servers go when their accounts need it


@dataclass(frozen=True)
class ServerRecord:
    pid: int
    start: str  # the process's start token: a pid reused by another process is not ours
    port: int

    def is_ours(self, servers_folder: Path) -> bool:
        """True while the demo's own server runs: the process it started, in its folder."""
        if self.start in ("", "0") or owner_gone(self.pid, self.start):
            return False
        try:
            cwd = Path(os.readlink(f"/proc/{self.pid}/cwd"))
        except OSError:
            return False
        return cwd.is_relative_to(servers_folder)


@dataclass(frozen=True)
class DemoState:
    servers_folder: Path
    postgres: ServerRecord | None = None
    redis: ServerRecord | None = None

    def ours(self, record: ServerRecord | None) -> bool:
        return record is not None and record.is_ours(self.servers_folder)

    @property
    def running(self) -> bool:
        return self.ours(self.postgres) and self.ours(self.redis)


def servers_folder_of(folder: Path, recorded: object) -> Path:
    """`recorded` if it is where start_demo puts servers (`servers` inside the demo's folder,
    or a /tmp/jarvis-demo-servers-* folder of this user's), else the folder's own."""
    own = folder / "servers"
    if not isinstance(recorded, str):
        return own
    path = Path(recorded)
    if path == own:
        return path
    try:
        info = path.lstat()
    except OSError:
        return own
    made_here = path.parent == Path("/tmp") and path.name.startswith(SERVERS_IN_TMP)
    return path if made_here and path.is_dir() and info.st_uid == os.getuid() else own


def _record(data: object) -> ServerRecord | None:
    if not isinstance(data, dict):
        return None
    pid, start, port = data.get("pid"), data.get("start"), data.get("port")
    valid = type(pid) is int and pid > 0 and isinstance(start, str) and type(port) is int
    return ServerRecord(pid, start, port) if valid else None


def read_state(folder: Path) -> DemoState | None:
    path = folder / STATE_FILE
    try:
        data = json.loads(path.read_text())
        return DemoState(
            servers_folder_of(folder, data.get("servers_folder")),
            _record(data.get("postgres")),
            _record(data.get("redis")),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):
        # Damaged: still a demo's folder; its servers, if any, are found no more.
        return DemoState(folder / "servers")


def write_state(folder: Path, state: DemoState) -> None:
    data = asdict(state) | {"servers_folder": str(state.servers_folder)}
    with atomic_output(folder / STATE_FILE) as handle:
        handle.write(json.dumps(data, indent=2).encode())
