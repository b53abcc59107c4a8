"""The `backup_failure:<source>` condition, raised and cleared the same way whether the
source was backed up alone (`backup redis`, the console's "back up now") or as a part of
`backup full`: critical while its last backup failed, a recovery notice after the next
success."""

import logging

from engines.alerts import AlertDispatcher

logger = logging.getLogger("jarvis.alerts")


def condition_for(source: str) -> str:
    return f"backup_failure:{source}"


def alert_backup_outcome(
    dispatcher: AlertDispatcher, label: str, source: str, failure: str | None
) -> None:
    """`label` names the backup (`backup <set id>`); `failure` is None after a success.
    Never raises: a broken channel or catalog must not hide the backup's own outcome."""
    try:
        if failure is not None:
            dispatcher.raise_condition(
                condition_for(source), "critical", f"{label}: {source} failed: {failure}"
            )
        else:
            dispatcher.clear_condition(
                condition_for(source), f"{label}: {source} backed up successfully again"
            )
    except Exception:
        logger.exception("could not record the %s alert for %s", condition_for(source), label)
