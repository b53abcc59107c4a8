"""The face every source shares (postgres, redis, files, secrets, config).

A source module exposes `SOURCE: Source`. The actions in `engines/actions/` are
the only callers; they hold the repository lock and the job around these calls.
A source whose backup can store less than was configured (paths that do not exist,
files it could not read) also has `left_out(artifacts) -> list[str]`.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

from engines.catalog import Artifact, BackupSet
from engines.config import Settings
from engines.jobs import JobContext
from engines.repository.resolve import ResolvedArtifact
from engines.workspace import Workspace


@dataclass
class RestoreReport:
    """What a restore did, or with `dry_run` what it would do: lines an operator reads."""

    source: str
    dry_run: bool
    target: str
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None  # a dry run's line saying why the restore would be refused

    def add(self, line: str) -> None:
        self.lines.append(line)

    def refuse(self, line: str) -> None:
        self.add(line)
        self.refusal = line


class Source(Protocol):
    kind: str

    def configured(self, settings: Settings) -> str | None:
        """None when the source can run; otherwise why it is skipped (shown to the operator)."""
        ...

    def back_up(
        self, workspace: Workspace, backup_set: BackupSet, options: Any, context: JobContext
    ) -> list[Artifact]:
        """Write this source's artifacts into `backup_set` and return them."""
        ...

    def restore(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        options: Any,
        context: JobContext,
    ) -> RestoreReport:
        """Restore from `artifacts`; with `options.dry_run` change nothing and report."""
        ...


def left_out_of(source: Source, artifacts: list[Artifact]) -> list[str]:
    """What a backup that stored `artifacts` left out, one operator line each; empty for a
    whole copy, and for sources that have nothing to leave out."""
    left_out = getattr(source, "left_out", None)
    return list(left_out(artifacts)) if left_out is not None else []
