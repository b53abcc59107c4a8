"""Shared by the scheduler, retention, alert, health and headless tests.

An injected clock instead of sleeping, settings that point at a temporary
repository, and catalog sets written with real artifacts through store_artifact.
"""

import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engines.actions.verbs import run_scheduled
from engines.catalog import BackupSet, Catalog
from engines.config import Settings, load_settings
from engines.jobs import run_job
from engines.repository.artifacts import store_artifact
from engines.workspace import Workspace

KEY = "0123456789abcdef" * 4


class Clock:
    """A settable UTC clock: `clock()` is now; `advance(hours=1)` moves it."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment


def base_variables(root: Path) -> dict[str, str]:
    return {
        "BACKUP_DIR": str(root / "repo"),
        "BACKUP_CATALOG_PATH": str(root / "state" / "catalog.sqlite3"),
        "BACKUP_LOG_DIR": str(root / "logs"),
        "BACKUP_ENCRYPTION_KEY": KEY,
        "BACKUP_TIMEZONE": "UTC",
        "BACKUP_COMPRESSION": "zstd",
        "BACKUP_COMPRESSION_LEVEL": "1",
    }


def make_settings(root: Path, **variables: str) -> Settings:
    """Settings from exactly these variables (run under the isolated_env fixture)."""
    return load_settings(environ={**base_variables(root), **variables})


def write_env_file(root: Path, **variables: str) -> Path:
    path = root / "jarvis.env"
    lines = [f'{name}="{value}"' for name, value in {**base_variables(root), **variables}.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def add_set(
    workspace: Workspace,
    created_at: datetime,
    *,
    kind: str = "full",
    tier: str | None = "daily",
    sources: Iterable[str] = ("postgres",),
    status: str = "complete",
    payload: bytes = b"rows",
) -> BackupSet:
    """A backup set made the real way: a job, store_artifact per source, a final status."""

    def work(context) -> BackupSet:
        backup_set = workspace.catalog.create_backup_set(
            kind, tier=tier, job_id=context.job_id, created_at=created_at
        )
        for source in sources:
            store_artifact(
                workspace,
                backup_set,
                context,
                source=source,
                mode="test",
                name=f"{source}.bin",
                stream=io.BytesIO(payload),
                metadata={},
            )
        workspace.catalog.finish_backup_set(backup_set.id, status)
        return workspace.catalog.get_backup_set(backup_set.id)

    return run_job(workspace.catalog, "backup", f"test set at {created_at}", work)


def catalog_consistency_problems(workspace: Workspace) -> list[str]:
    """What a crash or a kill must never leave behind."""
    catalog: Catalog = workspace.catalog
    problems = [f"job {j.id} still {j.status}" for j in catalog.unfinished_jobs()]
    for backup_set in catalog.list_backup_sets():
        if backup_set.status == "running":
            problems.append(f"set {backup_set.id} still running")
    for artifact in catalog.all_artifacts():
        path = workspace.repository.path_for(artifact.relpath)
        if artifact.status == "writing":
            problems.append(f"artifact {artifact.relpath} still writing")
        if artifact.status == "complete" and not path.is_file():
            problems.append(f"artifact {artifact.relpath} complete but missing")
    leftovers = [p for p in workspace.repository.root.rglob("*.tmp-*")]
    problems += [f"temporary left behind: {p}" for p in leftovers]
    return problems


def quick_verbs(verb, workspace, request, context) -> str:
    """The scheduler's verbs (its `run_verb`), the full backup replaced by a quick one: a
    real set with one real artifact, started at the injected time."""
    if verb != "backup-full":
        return run_scheduled(verb, workspace, request, context)
    backup_set = workspace.catalog.create_backup_set(
        "full", tier=request.tier, job_id=context.job_id, created_at=request.created_at
    )
    store_artifact(
        workspace,
        backup_set,
        context,
        source="postgres",
        mode="test",
        name="db.bin",
        stream=io.BytesIO(b"rows"),
        metadata={},
    )
    workspace.catalog.finish_backup_set(backup_set.id, "complete")
    return "complete"


T0 = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
