"""Which PostgreSQL backup `latest` means: for a restore into a database the newest dump
(`backup postgres`, `backup full`), for one laid out into a data folder the newest base
backup. A base backup taken after the nightly dump never becomes what a database
restore, `decrypt --sql` or the restore drill's dump check picks."""

from engines.catalog import LATEST, BackupSet, Catalog
from engines.errors import NotFoundError

SOURCE = "postgres"


def newest_postgres(catalog: Catalog, *, base: bool) -> BackupSet:
    """The newest good set holding a PostgreSQL base backup (`base`) or dump; when there is
    none of that kind, one line naming the newest of the other kind and how to restore it."""
    try:
        return catalog.get_backup_set(LATEST, SOURCE, base=base)
    except NotFoundError:
        other = newest_or_none(catalog, base=not base)
        if other is None:
            raise
    if base:
        raise NotFoundError(
            "no PostgreSQL base backup yet (`jarvis-tui backup postgres --mode base` takes one);"
            f" the newest dump backup is {other.id}: restore it without --pgdata"
        )
    raise NotFoundError(
        f"no PostgreSQL dump backup yet; the newest base backup is {other.id}: restore it "
        "with --pgdata DIR"
    )


def newest_or_none(catalog: Catalog, *, base: bool) -> BackupSet | None:
    try:
        return catalog.get_backup_set(LATEST, SOURCE, base=base)
    except NotFoundError:
        return None
