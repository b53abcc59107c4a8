"""What an operator can ask of a Redis backup or restore."""

from dataclasses import dataclass
from pathlib import Path

RDB_MODE = "rdb"
JSON_MODE = "json"


@dataclass(frozen=True)
class RedisBackupOptions:
    output: Path | None = None  # also copy the artifacts (with sidecars) here


@dataclass(frozen=True)
class RedisRestoreOptions:
    dry_run: bool = False
    flush: bool = False  # empty the target databases once the artifact has loaded
    from_json: bool = False
    db: int | None = None  # only this database of the backup
    replace: bool = False  # overwrite keys that exist on the target
    data_dir: Path | None = None  # offline: put the RDB into a stopped server's folder
