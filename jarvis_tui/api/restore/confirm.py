"""Which restores replace data, and what the caller must send as `confirm` for them: the
name the console's wizards ask the operator to type (jarvis_tui/screens/restore_*.py).

- postgres: with `drop_existing`, or into the live database (POSTGRES_DB, or the one the
  backup was dumped from): the target database's name. A point-in-time restore writes a
  whole cluster: the data folder's own name (`pgdata`'s last part), as the wizard asks.
- redis: with `flush` or `replace`, the server's `host:port` (REDIS_URL without its
  password); offline (`data_dir`), that folder as given.
- files: any `overwrite` but `never`, unless `target_dir` is a new (missing or empty)
  folder: the folder as given, or `the original locations`.
- secrets: with `force`, the file written (`to` as given, or where it was backed up from).
- config: with `force` into where the files were (no `target_dir`): `the original locations`.
- full: `restore`, as the complete system restore's confirmation.

A dry run changes nothing and needs no confirmation; neither does a restore into a
scratch target (a new database name, a new folder).
"""

import os
from pathlib import Path

from engines.catalog import Artifact
from engines.config import Settings
from engines.postgres.restore import target_database
from jarvis_tui.api.errors import ApiError, bad_request
from jarvis_tui.api.restore.request import (
    ConfigRestore,
    FilesRestore,
    FullRestore,
    PostgresRestore,
    RedisRestore,
    SecretsRestore,
)
from jarvis_tui.restore_access import ORIGINAL, redis_server_address

FULL_WORD = "restore"  # jarvis_tui/screens/system_restore.py types it too


def _dumped(artifacts: list[Artifact]) -> str | None:
    return next(
        (str(a.metadata["database"]) for a in artifacts if a.metadata.get("database")), None
    )


def _secret_file(body: SecretsRestore, artifacts: list[Artifact]) -> str | None:
    """Where a secrets restore writes: `to`, else where the chosen file came from."""
    if body.to:
        return body.to
    chosen = [
        a
        for a in artifacts
        if body.file is None
        or body.file in (a.metadata.get("file_name"), a.metadata.get("original_path"))
        or a.relpath.endswith(body.file)
    ]
    found = chosen[0].metadata.get("original_path") if len(chosen) == 1 else None
    return None if found is None else str(found)


def target_of(body: object, settings: Settings, artifacts: list[Artifact]) -> str:
    """Where the restore writes, as its job's description names it."""
    if isinstance(body, PostgresRestore):
        if body.pgdata:
            return body.pgdata
        return target_database(body.target_db, settings, _dumped(artifacts))
    if isinstance(body, RedisRestore):
        return body.data_dir or redis_server_address(settings)
    if isinstance(body, FilesRestore | ConfigRestore):
        return body.target_dir or ORIGINAL
    if isinstance(body, SecretsRestore):
        return _secret_file(body, artifacts) or "the secret file it was backed up from"
    return "the whole system"


def _new_folder(folder: str) -> bool:
    path = Path(folder)
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    with os.scandir(path) as entries:
        return not any(entries)


def _replaces(body: object, settings: Settings, artifacts: list[Artifact]) -> bool:
    if isinstance(body, PostgresRestore):
        if body.pgdata:
            return body.pitr  # a whole cluster: the wizard has its folder's name typed
        target = target_database(body.target_db, settings, _dumped(artifacts))
        return body.drop_existing or target in {settings.postgres_db, _dumped(artifacts)}
    if isinstance(body, RedisRestore):
        return bool(body.flush or body.replace or body.data_dir)
    if isinstance(body, FilesRestore):
        if body.overwrite == "never":
            return False
        return body.target_dir is None or not _new_folder(body.target_dir)
    if isinstance(body, SecretsRestore):
        return body.force
    if isinstance(body, ConfigRestore):
        return body.force and body.target_dir is None
    if isinstance(body, FullRestore):
        return True
    raise TypeError(f"no confirmation rule for {type(body).__name__}")


def expected_confirmation(
    body: object, settings: Settings, artifacts: list[Artifact]
) -> str | None:
    """What `confirm` must be for this restore; None when it replaces nothing."""
    if getattr(body, "dry_run", False) or not _replaces(body, settings, artifacts):
        return None
    if isinstance(body, FullRestore):
        return FULL_WORD
    if isinstance(body, PostgresRestore) and body.pitr and body.pgdata:
        return Path(body.pgdata).name
    if isinstance(body, SecretsRestore) and _secret_file(body, artifacts) is None:
        names = ", ".join(str(a.metadata.get("original_path") or a.relpath) for a in artifacts)
        raise bad_request(
            f"file: name the secret file to restore (this backup holds {names})", "file"
        )
    return target_of(body, settings, artifacts)


def check_confirmation(
    body: object, kind: str, settings: Settings, artifacts: list[Artifact]
) -> None:
    """400 naming `confirm` unless it is exactly the expected name (or none is needed)."""
    expected = expected_confirmation(body, settings, artifacts)
    if expected is None:
        return
    given = getattr(body, "confirm", None)
    if given == expected:
        return
    what = "missing" if given is None else "does not match"
    replaces = "the whole system" if isinstance(body, FullRestore) else f"data in {expected}"
    raise ApiError(
        400,
        "confirmation_required",
        f"confirm: {what}; this {kind} restore replaces {replaces}: send "
        f'"confirm": "{expected}" to go on, or "dry_run": true to see what it would do',
        field="confirm",
    )
