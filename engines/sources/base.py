"""The face every source shares (postgres, redis, files, secrets, config).

A source module exposes `SOURCE`, an instance of a `Source` subclass, and is named
by one entry of the registry (`engines/sources/__init__.py`). The actions in
`engines/actions/` are the only callers; they hold the repository lock and the
job around these calls. Every source backs up and restores; the other abilities
(`newest_for_restore`, `left_out`, `reachable`, `verify_restore`, `full_restore_options`,
`check_restored`, `prune`) have defaults here that say "nothing of the kind", so callers
ask every source the same way.
"""

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from engines.catalog import LATEST, Artifact, BackupSet
from engines.config import Settings
from engines.jobs import JobContext
from engines.reports import RestoreReport
from engines.repository.resolve import ResolvedArtifact
from engines.workspace import Workspace

# A health probe (`reachable`) gives up after this long, so a dead server costs the
# health check and the dashboard seconds, not minutes.
PROBE_TIMEOUT_S = 5


class Source(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def configured(self, settings: Settings) -> str | None:
        """None when the source can run; otherwise why it is skipped (shown to the operator)."""

    @abstractmethod
    def back_up(
        self, workspace: Workspace, backup_set: BackupSet, options: Any, context: JobContext
    ) -> list[Artifact]:
        """Write this source's artifacts into `backup_set` and return them."""

    @abstractmethod
    def restore(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        options: Any,
        context: JobContext,
    ) -> RestoreReport:
        """Restore from `artifacts`; with `options.dry_run` change nothing and report."""

    def newest_for_restore(self, workspace: Workspace, options: Any) -> BackupSet:
        """What `latest` means for a restore with `options`: the newest good set holding
        this source (PostgreSQL: of the kind the restore needs, dump or base backup)."""
        return workspace.catalog.get_backup_set(LATEST, self.kind)

    def left_out(self, artifacts: list[Artifact]) -> list[str]:
        """What a backup that stored `artifacts` left out of what was configured (paths
        that do not exist, files it could not read), one operator line each; empty for a
        whole copy. `backup <kind>` fails and a full backup's part ends `warning` for it."""
        return []

    def reachable(self, settings: Settings) -> str | None:
        """The health probe of a source with a server: which server answered, or raise
        saying why not (within PROBE_TIMEOUT_S); None for a source with no server."""
        return None

    def verify_restore(
        self, workspace: Workspace, artifact: Artifact, context: JobContext
    ) -> str | None:
        """The scheduled restore drill of one authenticated artifact: restore it somewhere
        scratch and compare; what matched, or None when this artifact has no such check."""
        return None

    def full_restore_options(self, artifacts: list[Artifact], dry_run: bool) -> list[Any]:
        """`restore full`: the options of each restore of this source's `artifacts` (one
        set's), the guide's way (original targets, replacing what is there); empty for a
        source with no such plan, which the full restore then names as left to the operator."""
        return []

    def check_restored(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        report: RestoreReport,
        context: JobContext,
    ) -> str | None:
        """After `restore full` restored `artifacts` (with `report`): the target as it is now
        compared with the backup's metadata; what matched, or raise IntegrityError naming the
        differences; None when there is nothing to compare."""
        return None

    def prune(self, workspace: Workspace, context: JobContext) -> str | None:
        """Remove stored data no backup references, for a source with a store of its own
        (cleanup calls it after retention): what it removed, or None when it keeps none."""
        return None
