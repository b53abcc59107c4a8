"""Places backups are kept. Adding one: a module with the `Destination` face, a line in
DESTINATION_KINDS, and its factory in tests/test_destination_contract.py."""

from engines.config import Settings
from engines.destinations.base import (
    Destination,
    InvalidKeyError,
    StoredObject,
    key_problem,
    validate_key,
)
from engines.destinations.local import LocalRepository
from engines.destinations.read_only import ReadOnlyDestination
from engines.destinations.s3 import S3Destination

DESTINATION_KINDS: dict[str, type[Destination]] = {"local": LocalRepository, "s3": S3Destination}
REPOSITORY_KIND = "local"


def repository_from_settings(settings: Settings) -> Destination:
    """The destination that holds the repository: the local folder BACKUP_DIR; while
    browsing (BACKUP_BROWSE), the other host's S3 prefix, read-only."""
    if settings.browsing:
        browsed = S3Destination.of_prefix(settings, settings.browse_prefix)
        return ReadOnlyDestination(browsed, f"s3://{settings.s3_bucket}/{browsed.prefix}")
    return LocalRepository.from_settings(settings)


def copy_destinations(settings: Settings) -> list[Destination]:
    """Every destination the settings configure besides the repository itself (none
    while browsing: the browsed prefix is all there is)."""
    if settings.browsing:
        return []
    found = []
    for kind, destination_class in DESTINATION_KINDS.items():
        destination = None if kind == REPOSITORY_KIND else destination_class.from_settings(settings)
        if destination is not None:
            found.append(destination)
    return found


__all__ = [
    "DESTINATION_KINDS",
    "Destination",
    "InvalidKeyError",
    "LocalRepository",
    "StoredObject",
    "copy_destinations",
    "key_problem",
    "repository_from_settings",
    "validate_key",
]
