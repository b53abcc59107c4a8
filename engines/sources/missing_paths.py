"""Configured paths that do not exist (an unmounted disk, a typo) in the path-based sources
(files, config): the others are backed up, and the missing ones are named, alerted as
`backup_paths_missing:<source>` and cleared once a backup finds every path again."""

from engines.alerts import AlertDispatcher
from engines.workspace import Workspace


def condition_for(source: str) -> str:
    return f"backup_paths_missing:{source}"


def missing_line(setting: str, path: str) -> str:
    """The warning for one missing path, as logs, the CLI and `backup full` show it."""
    return (
        f"{setting}: {path} does not exist and was not backed up; create it or remove it "
        f"from {setting}"
    )


def alert_missing_paths(
    workspace: Workspace, set_id: str, source: str, setting: str, missing: list[str]
) -> None:
    """Data no longer protected: critical until a backup finds every path again."""
    dispatcher = AlertDispatcher(workspace.catalog, workspace.settings)
    if missing:
        dispatcher.raise_condition(
            condition_for(source),
            "critical",
            f"backup {set_id}: {source}: not backed up because they do not exist: "
            f"{', '.join(missing)}; create them or remove them from {setting}",
        )
    else:
        dispatcher.clear_condition(
            condition_for(source), f"backup {set_id}: {source}: every path of {setting} backed up"
        )
