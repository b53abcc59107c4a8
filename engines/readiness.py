"""Settings that load but cannot back anything up: no encryption key, source paths that
do not exist. The CLI's `config check` and the console's Settings pane and dashboard
list these with the settings' own problems, as `VARIABLE: message` lines."""

from pathlib import Path

from engines.config import Settings

KEY_VARIABLE = "BACKUP_ENCRYPTION_KEY"
PATH_VARIABLES = ("BACKUP_FILE_PATHS", "BACKUP_CONFIG_PATHS")
# How to make a key, in the words of whoever shows the problem; the console passes its own.
KEYGEN_ADVICE = "generate one with `jarvis-tui keygen --append-to .env`"


def _named(problems: tuple[str, ...], variable: str) -> bool:
    return any(problem.startswith(f"{variable}:") for problem in problems)


def exists_or_unreadable(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # unreadable: the backup that uses it says why
        return True


def _paths(settings: Settings, variable: str) -> tuple[Path, ...]:
    """The paths set (the guide's default folders are the first start's business)."""
    return tuple(getattr(settings, variable.lower()) or ())


def readiness_problems(settings: Settings, key_advice: str = KEYGEN_ADVICE) -> list[str]:
    """What would make a backup fail or skip data, beyond the settings' own problems."""
    if settings.browsing:  # a browsing host reads another's backups and writes none
        return []
    problems: list[str] = []
    key_set = settings.backup_encryption_key or settings.backup_encryption_key_secret_id
    if not key_set and not _named(settings.problems, KEY_VARIABLE):
        problems.append(
            f"{KEY_VARIABLE}: not set, so every backup is refused; {key_advice}, or name "
            f"the AWS Secrets Manager secret holding it in {KEY_VARIABLE}_SECRET_ID"
        )
    for variable in PATH_VARIABLES:
        if _named(settings.problems, variable):
            continue
        for path in _paths(settings, variable):
            if not exists_or_unreadable(Path(path)):
                problems.append(
                    f"{variable}: {path} does not exist; create it or remove it from {variable}"
                )
    return problems


def all_problems(settings: Settings, key_advice: str = KEYGEN_ADVICE) -> tuple[str, ...]:
    """The settings' own problems, then what would stop or shorten a backup."""
    return (*settings.problems, *readiness_problems(settings, key_advice))
