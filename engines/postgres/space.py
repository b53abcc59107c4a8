"""Free-space checks before writing: fail early, clearly, and raise an alert."""

import shutil
from pathlib import Path

from engines.catalog import Catalog
from engines.errors import InsufficientSpaceError

BACKUP_SPACE_FACTOR = 2  # the guide: "Ensure at least 2x database size available"


def human(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def require_free_space(
    catalog: Catalog, folder: Path, needed: int, *, purpose: str, advice: str
) -> None:
    """Raise InsufficientSpaceError (and record a critical alert) if `folder`'s file system
    has less than `needed` bytes free."""
    free = shutil.disk_usage(folder).free
    if free >= needed:
        return
    message = (
        f"not enough free space in {folder} for {purpose}: {human(free)} free, "
        f"{human(needed)} needed; {advice}"
    )
    catalog.record_alert("critical", "disk_space", message)
    raise InsufficientSpaceError(message)
