"""The body of `POST /api/backups/{id}/restore`: one model per type of restore, each
taking only its own options (the CLI's `restore <type>` options, in snake_case), and the
restore options object the CLI builds from them.

`{"type": "files", "target_dir": "/srv/restored", "dry_run": true}`; an option of another
type (`"flush"` on a files restore) or a misspelt one is refused, naming it.
"""

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from engines.actions.full_restore_steps import FullRestoreOptions
from engines.pitr.restore_target import ACTIONS, DEFAULT_ACTION, DEFAULT_START_TIMEOUT_S
from engines.postgres.options import PostgresRestoreOptions
from engines.redis.options import RedisRestoreOptions
from engines.sources.config_files import ConfigRestoreOptions
from engines.sources.secrets import SecretsRestoreOptions
from engines.store.restore_plan import OVERWRITE_POLICIES, FilesRestoreOptions
from jarvis_tui.pitr_choices import (
    TARGET_OPTIONS,
    RestoreChoiceError,
    pitr_target,
    start_request,
)

NAME_MAX = 255  # bytes of one name, and of a whole path: Linux's file systems
PATH_MAX = 4095


def _absolute(path: str) -> str:
    if not Path(path).is_absolute():
        raise ValueError(
            f"{path!r} is not an absolute path; give the full path on the server "
            "(a relative one would be taken from the server's own working folder)"
        )
    # No file system takes these; checking a folder for them raised (a 500).
    if "\x00" in path:
        raise ValueError("holds a NUL character, which no path can")
    encoded = os.fsencode(path)
    if len(encoded) > PATH_MAX or any(len(name) > NAME_MAX for name in encoded.split(b"/")):
        raise ValueError(
            f"is longer than a path ({PATH_MAX} bytes) or one of its names "
            f"({NAME_MAX} bytes) may be"
        )
    return path


AbsolutePath = Annotated[str, AfterValidator(_absolute)]


class _RestoreBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """A NUL can be in no path, name or table a restore is given."""
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("contains a NUL character")
        return value

    dry_run: bool = Field(
        False, description="authenticate and report what would be restored; change nothing"
    )
    confirm: str | None = Field(
        None,
        description="a restore that replaces data: the target's name, as the console's typed "
        "confirmation asks for it (a 400 naming `confirm` says what to type)",
    )


def _field(description: str, default: Any = None) -> Any:
    return Field(default, description=description)


class PostgresRestore(_RestoreBody):
    type: Literal["postgres"]
    target_db: str | None = _field("restore under this name (default: POSTGRES_DB)")
    drop_existing: bool = _field(
        "replace a non-empty target (the previous one is kept as NAME_pre_restore_TIME)", False
    )
    discard_previous: bool = _field(
        "with drop_existing: drop the previous database after a successful swap", False
    )
    table: list[str] = _field("restore only these tables (`name` or `schema.name`)", [])
    jobs: int | None = Field(
        None, ge=1, le=256, description="parallel COPY connections (default: number of cores)"
    )
    with_globals: bool = _field("also recreate roles and tablespaces", False)
    no_owner: bool = _field("leave out the backup's owners", False)
    no_acl: bool = _field("leave out the backup's grants", False)
    pgdata: AbsolutePath | None = _field("a base backup: lay it out into this empty data folder")
    pitr: bool = _field("point-in-time recovery into pgdata: needs one target_*", False)
    target_time: str | None = _field('with pitr: a moment, "2026-11-27 14:03:00+00"')
    target_lsn: str | None = _field("with pitr: a WAL position, 0/3000148")
    target_xid: str | None = _field("with pitr: a transaction id")
    target_name: str | None = _field("with pitr: a restore point")
    target: Literal["immediate"] | None = _field("with pitr: the base backup's end")
    target_action: Literal[ACTIONS] = _field("with pitr: once there", DEFAULT_ACTION)  # type: ignore[valid-type]
    target_timeline: int | None = _field("with pitr: recover along this timeline")
    start: bool = _field("with pitr: start PostgreSQL on the folder, wait for the target", False)
    port: int | None = _field("with start: the port the restored server takes")
    start_timeout: float = Field(
        DEFAULT_START_TIMEOUT_S,
        gt=0,
        allow_inf_nan=False,
        description="with start: seconds to wait",
    )

    def options(self, env_file: Path | None, reference: str) -> PostgresRestoreOptions:
        spell = str  # the body's own names: `target_time`, not `--target-time`
        pgdata = Path(self.pgdata) if self.pgdata else None
        pitr = pitr_target(
            pitr=self.pitr,
            targets={kind: getattr(self, option) for kind, option in TARGET_OPTIONS.items()},
            action=self.target_action,
            timeline=self.target_timeline,
            pgdata=pgdata,
            backup=reference,
            env_file=env_file,
            spell=spell,
        )
        start = start_request(
            start=self.start,
            port=self.port,
            timeout_s=self.start_timeout,
            pitr=self.pitr,
            spell=spell,
        )
        jobs = {} if self.jobs is None else {"jobs": self.jobs}
        return PostgresRestoreOptions(
            dry_run=self.dry_run,
            drop_existing=self.drop_existing,
            discard_previous=self.discard_previous,
            target_db=self.target_db,
            tables=tuple(self.table),
            with_globals=self.with_globals,
            no_owner=self.no_owner,
            no_acl=self.no_acl,
            pgdata=pgdata,
            pitr=pitr,
            start=start,
            **jobs,
        )


class RedisRestore(_RestoreBody):
    type: Literal["redis"]
    flush: bool = _field("empty the target databases first (once the backup has loaded)", False)
    from_json: bool = _field("restore the JSON export instead of the RDB", False)
    db: int | None = Field(None, ge=0, description="restore only this database")
    replace: bool = _field("overwrite keys that exist on the target", False)
    data_dir: AbsolutePath | None = _field(
        "offline: place the RDB as DIR/dump.rdb for a stopped server"
    )

    def options(self, env_file: Path | None, reference: str) -> RedisRestoreOptions:
        return RedisRestoreOptions(
            dry_run=self.dry_run,
            flush=self.flush,
            from_json=self.from_json,
            db=self.db,
            replace=self.replace,
            data_dir=Path(self.data_dir) if self.data_dir else None,
        )


class FilesRestore(_RestoreBody):
    type: Literal["files"]
    paths: list[str] = _field("only these files or folders (as backed up)", [])
    target_dir: AbsolutePath | None = _field(
        "restore below this folder (default: the original locations)"
    )
    strip_prefix: str | None = _field("drop this leading folder from restored paths")
    overwrite: Literal[OVERWRITE_POLICIES] = _field(  # type: ignore[valid-type]
        "existing files: never, if-newer (default) or always", "if-newer"
    )
    skip_missing: bool = _field("restore the rest when some files' data cannot be read", False)

    def options(self, env_file: Path | None, reference: str) -> FilesRestoreOptions:
        if self.strip_prefix and not self.target_dir:
            raise RestoreChoiceError(
                "strip_prefix needs target_dir: the paths below the prefix are laid out in "
                "that folder, never in the original locations",
                "strip_prefix",
            )
        return FilesRestoreOptions(
            paths=tuple(self.paths),
            target_dir=Path(self.target_dir) if self.target_dir else None,
            strip_prefix=self.strip_prefix,
            overwrite=self.overwrite,
            dry_run=self.dry_run,
            skip_missing=self.skip_missing,
        )


class SecretsRestore(_RestoreBody):
    type: Literal["secrets"]
    to: AbsolutePath | None = _field("the file to write (default: where it was)")
    force: bool = _field("replace an existing file (kept as PATH.bak)", False)
    file: str | None = _field("which secret file, if the backup holds several")

    def options(self, env_file: Path | None, reference: str) -> SecretsRestoreOptions:
        return SecretsRestoreOptions(
            to=Path(self.to) if self.to else None,
            force=self.force,
            dry_run=self.dry_run,
            file=self.file,
        )


class ConfigRestore(_RestoreBody):
    type: Literal["config"]
    target_dir: AbsolutePath | None = _field("restore below this folder (default: where it was)")
    force: bool = _field("replace differing files (each kept as NAME.bak)", False)

    def options(self, env_file: Path | None, reference: str) -> ConfigRestoreOptions:
        return ConfigRestoreOptions(
            target_dir=Path(self.target_dir) if self.target_dir else None,
            force=self.force,
            dry_run=self.dry_run,
        )


class FullRestore(_RestoreBody):
    type: Literal["full"]
    app_stopped: bool = _field(
        "the application is already stopped (needed when JARVIS_STOP_COMMAND is not set)", False
    )

    def options(self, env_file: Path | None, reference: str) -> FullRestoreOptions:
        return FullRestoreOptions(dry_run=self.dry_run, app_stopped=self.app_stopped)


RestoreBody = Annotated[
    PostgresRestore | RedisRestore | FilesRestore | SecretsRestore | ConfigRestore | FullRestore,
    Field(discriminator="type"),
]
TYPES = ("postgres", "redis", "files", "secrets", "config", "full")
