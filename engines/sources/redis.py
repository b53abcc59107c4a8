"""Redis as a source: the shared face over `engines/redis/`."""

import contextlib
from collections.abc import Iterator
from typing import Any

import redis

from engines.catalog import Artifact, BackupSet
from engines.config import Settings
from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.redis.backup import back_up_redis
from engines.redis.drill import drill_redis
from engines.redis.live_check import compare_restored_keys
from engines.redis.options import RDB_MODE, RedisBackupOptions, RedisRestoreOptions
from engines.redis.restore import choose_artifact, restore_redis
from engines.redis.verify import check_artifact, content_of
from engines.repository.resolve import ResolvedArtifact, resolved_from_catalog
from engines.sources.base import PROBE_TIMEOUT_S, RestoreReport, Source
from engines.workspace import Workspace


class RedisSource(Source):
    kind = "redis"

    def configured(self, settings: Settings) -> str | None:
        if settings.redis_configured:
            return None
        return "Redis is not configured; set REDIS_URL (e.g. redis://localhost:6379/0)"

    def back_up(
        self, workspace: Workspace, backup_set: BackupSet, options: Any, context: JobContext
    ) -> list[Artifact]:
        with server_errors_explained():
            return back_up_redis(workspace, backup_set, options or RedisBackupOptions(), context)

    def restore(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        options: Any,
        context: JobContext,
    ) -> RestoreReport:
        with server_errors_explained():
            return restore_redis(workspace, artifacts, options or RedisRestoreOptions(), context)

    def full_restore_options(
        self, artifacts: list[Artifact], dry_run: bool
    ) -> list[RedisRestoreOptions]:
        """The guide's `--flush`: the snapshot (the JSON export when the set has none) loaded
        whole before the target is emptied, so a failure leaves it as it was."""
        from_json = not any(a.mode == RDB_MODE for a in artifacts)
        return [RedisRestoreOptions(dry_run=dry_run, flush=True, from_json=from_json)]

    def check_restored(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        report: RestoreReport,
        context: JobContext,
    ) -> str | None:
        from_json = not any(content_of(a.metadata) == RDB_MODE for a in artifacts)
        chosen = choose_artifact(artifacts, RedisRestoreOptions(from_json=from_json))
        written = {str(db): int(n) for db, n in report.details.get("written", {}).items()}
        with server_errors_explained():
            return compare_restored_keys(
                workspace.settings, chosen.metadata, written, int(report.details.get("expired", 0))
            )

    def reachable(self, settings: Settings) -> str:
        client = redis.Redis.from_url(
            settings.redis_url.reveal(),
            socket_connect_timeout=PROBE_TIMEOUT_S,
            socket_timeout=PROBE_TIMEOUT_S,
        )
        try:
            client.ping()
            version = client.info("server").get("redis_version", "?")
        except redis.RedisError as error:
            raise JarvisError(f"Redis does not answer: {error}; check REDIS_URL") from None
        finally:
            client.close()
        return f"Redis {version} answers"

    def verify_restore(
        self, workspace: Workspace, artifact: Artifact, context: JobContext
    ) -> str | None:
        """The scheduled restore drill: the RDB through redis-check-rdb, the JSON export
        parsed in full, key counts compared with the metadata; then restored into a
        scratch redis-server and its keys counted."""
        check = check_artifact(resolved_from_catalog(workspace, artifact), workspace.keyring())
        if not check.ok:
            raise IntegrityError(f"{artifact.relpath}: {check.detail}")
        with server_errors_explained():
            restored = drill_redis(workspace, resolved_from_catalog(workspace, artifact), context)
        return f"{check.detail}; {restored}"


@contextlib.contextmanager
def server_errors_explained() -> Iterator[None]:
    """A reply we did not foresee (OOM, a read-only replica, a disabled command) reaches
    the operator as a message, not a traceback."""
    try:
        yield
    except redis.RedisError as error:
        detail = str(error).strip() or type(error).__name__
        raise JarvisError(f"Redis refused an operation: {detail}") from error


SOURCE = RedisSource()
