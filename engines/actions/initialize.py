"""`jarvis-tui init` (the guide's `backup:init`): folders, catalog, settings check."""

from dataclasses import dataclass, field
from pathlib import Path

from engines.catalog import Catalog
from engines.config import Settings
from engines.destinations import repository_from_settings
from engines.plumbing.fsutil import ensure_private_dir, remove_abandoned_temporaries


@dataclass
class InitReport:
    repository: Path
    catalog: Path
    log_dir: Path
    removed_temporaries: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def initialize(settings: Settings) -> InitReport:
    repository = repository_from_settings(settings)
    repository.ensure_repository_id()
    Catalog.open(settings.catalog_path).close()
    ensure_private_dir(settings.log_dir)
    report = InitReport(settings.repository_dir, settings.catalog_path, settings.log_dir)
    # Without a workspace (init opens no catalog for actions): the folder the lock and
    # work folders live in is BACKUP_DIR, as `Workspace.local_root` says.
    report.removed_temporaries = remove_abandoned_temporaries(settings.repository_dir)
    if settings.backup_encryption_key is None and not settings.backup_encryption_key_secret_id:
        report.warnings.append(
            "BACKUP_ENCRYPTION_KEY is not set: backups cannot run until it is; "
            "create one with `jarvis-tui keygen --append-to .env`"
        )
    return report
