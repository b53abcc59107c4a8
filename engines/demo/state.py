"""The demo's state file (`demo.json` in its folder): where its servers live and which
processes they are. Its presence is also what marks a folder as a demo's, the only kind
`jarvis-tui demo --stop` removes."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from engines.plumbing.fsutil import atomic_output
from engines.plumbing.processes import owner_gone

STATE_FILE = "demo.json"


@dataclass(frozen=True)
class ServerRecord:
    pid: int
    start: str  # the process's start token: a pid reused by another process is not ours
    port: int

    @property
    def running(self) -> bool:
        return not owner_gone(self.pid, self.start)


@dataclass(frozen=True)
class DemoState:
    servers_folder: Path
    postgres: ServerRecord | None = None
    redis: ServerRecord | None = None

    @property
    def running(self) -> bool:
        return all(r is not None and r.running for r in (self.postgres, self.redis))


def read_state(folder: Path) -> DemoState | None:
    path = folder / STATE_FILE
    try:
        data = json.loads(path.read_text())
        return DemoState(
            Path(data["servers_folder"]),
            *(ServerRecord(**data[k]) if data.get(k) else None for k in ("postgres", "redis")),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        # Damaged: still a demo's folder; its servers, if any, are found no more.
        return DemoState(folder / "servers")


def write_state(folder: Path, state: DemoState) -> None:
    data = asdict(state) | {"servers_folder": str(state.servers_folder)}
    with atomic_output(folder / STATE_FILE) as handle:
        handle.write(json.dumps(data, indent=2).encode())
