"""Where `catalog rebuild` reads: the repository (BACKUP_DIR, or the prefix browsed with
BACKUP_BROWSE), or a copy (`--from s3`), which the repository first takes the id of."""

from dataclasses import dataclass

from engines.destinations import Destination, copy_destinations
from engines.errors import IntegrityError, NotFoundError, SettingsError
from engines.workspace import Workspace

UNCHANGED = "point BACKUP_DIR at the repository (is its disk mounted?); the catalog was not changed"
UNCHANGED_COPY = "check S3_BUCKET and S3_PREFIX; the catalog was not changed"
UNCHANGED_BROWSED = "check BACKUP_BROWSE (the other host's S3_PREFIX); the catalog was not changed"


@dataclass(frozen=True)
class RebuildSource:
    """Where the rebuild reads: the destination, how to name it, what to do when it
    holds nothing."""

    destination: Destination
    where: str
    fix: str


def repository_source(workspace: Workspace) -> RebuildSource:
    if workspace.settings.browsing:  # the repository is the browsed prefix, read-only
        where = f"s3://{workspace.settings.s3_bucket}/{workspace.settings.browse_prefix}"
        return RebuildSource(workspace.repository, where, UNCHANGED_BROWSED)
    root = workspace.local_root
    if not root.is_dir():
        raise NotFoundError(f"BACKUP_DIR {root} does not exist; {UNCHANGED}")
    return RebuildSource(workspace.repository, f"BACKUP_DIR {root}", UNCHANGED)


def copy_source(workspace: Workspace, name: str) -> RebuildSource:
    for destination in copy_destinations(workspace.settings):
        if destination.name == name:
            settings = workspace.settings
            where = f"s3://{settings.s3_bucket}/{(settings.s3_prefix or '').strip('/')}"
            return RebuildSource(destination, where if name == "s3" else name, UNCHANGED_COPY)
    raise SettingsError(
        [
            f"catalog rebuild --from {name}: no {name} copy is configured; set S3_ENABLED=true, "
            "S3_BUCKET and S3_PREFIX as on the host that made the backups (while browsing "
            "with BACKUP_BROWSE, run `catalog rebuild` alone)"
        ]
    )


def copy_repository_id(workspace: Workspace, source: RebuildSource) -> str | None:
    """The copy's id, which every artifact there is sealed with, when the repository is to
    take it (None: it has it already); a repository with an id of its own is another one,
    and is never mixed with the copy. Nothing is written: the repository takes the id only
    once something there authenticates against it (`adopt_repository_id`)."""
    theirs = source.destination.repository_id()
    if theirs is None:
        raise NotFoundError(
            f"{source.where} holds no repository id (.repository-id), so nothing there can "
            "be authenticated; run `jarvis-tui sync` on the host that made the backups "
            "(it uploads the id), or check S3_PREFIX; the catalog was not changed"
        )
    ours = workspace.repository.repository_id()
    if ours is not None and ours != theirs:
        raise IntegrityError(
            f"BACKUP_DIR {workspace.local_root} is repository {ours}, but {source.where} "
            f"holds repository {theirs}: another host's backups; browse them read-only "
            "with `jarvis-tui catalog rebuild --from s3 --prefix PREFIX`, or point "
            "BACKUP_DIR at an empty folder; the catalog was not changed"
        )
    return theirs if ours is None else None


def adopt_repository_id(
    workspace: Workspace, source: RebuildSource, theirs: str, authentic: bool, refused: list[str]
) -> None:
    """The repository takes the copy's id once something there authenticates against it
    (`authentic`): a forged `.repository-id` (or a wrong key) that refused everything
    would otherwise be adopted for good, and every set imported failed."""
    if not authentic and refused:
        raise IntegrityError(
            f"nothing in {source.where} authenticates with this key against its repository "
            f"id ({len(refused)} object(s) refused; the first: {refused[0]}); check "
            "BACKUP_ENCRYPTION_KEY and that .repository-id there is the one the backups "
            "were made with; BACKUP_DIR and the catalog were not changed"
        )
    ours = workspace.repository.ensure_repository_id(theirs)
    if ours != theirs:  # another process gave it another id meanwhile
        raise IntegrityError(
            f"BACKUP_DIR {workspace.local_root} became repository {ours} while the catalog "
            f"was rebuilt from {source.where} ({theirs}); the catalog was not changed"
        )
