"""Which timeline a point-in-time restore recovers along, written into the recovery settings
as a number (never `latest`: a timeline promoted later must not divert this restore).

--target-timeline N when given; for `immediate`, the base backup's own; otherwise the newest
timeline in the archive, as PostgreSQL's `latest` would take: a moment after a switch exists
on both branches, and the newest is the one the cluster went on with. The base backup must
lie on that timeline's path (taken on it or an ancestor, before the ancestor was left).
"""

from collections.abc import Callable

from engines.errors import JarvisError
from engines.pitr.restore_target import PitrTarget
from engines.pitr.timeline_history import (
    TimelinePath,
    archived_history_timelines,
    timeline_path,
)
from engines.workspace import Workspace


def path_for_base(workspace: Workspace, base: dict, target: PitrTarget) -> TimelinePath:
    """The path recovery from `base` follows to `target`; one line when the base is not on
    the timeline asked for."""
    system_id, own = int(base["system_identifier"]), int(base["timeline"])
    if target.timeline is None and target.kind == "immediate":
        return TimelinePath(own)
    if target.timeline is not None:
        path = _path(workspace, system_id, target.timeline)
        if not path.holds_base(base):
            raise JarvisError(
                f"the base backup (timeline {own}, ended at WAL {base.get('stop_lsn')}) is not "
                f"on timeline {target.timeline}'s history ({path.describe()}); nothing was "
                "changed. Name a base backup taken before the switch, or another "
                "--target-timeline (`jarvis-tui pitr timeline` lists them)"
            )
        return path
    for timeline in _newest_first(workspace, system_id, own):
        path = _path(workspace, system_id, timeline)
        if path.holds_base(base):
            return path
    return TimelinePath(own)


def base_on_timeline(workspace: Workspace, target: PitrTarget) -> Callable[[dict], bool]:
    """For choosing the base backup: whether one (its catalog metadata) lies on the timeline
    the restore will follow (given, else the newest of its cluster)."""
    paths: dict[int, TimelinePath] = {}

    def holds(base: dict) -> bool:
        if target.kind == "immediate" and target.timeline is None:
            return True
        system_id = int(base["system_identifier"])
        if system_id not in paths:
            timeline = target.timeline or max(_newest_first(workspace, system_id, 1))
            paths[system_id] = _path(workspace, system_id, timeline)
        return paths[system_id].holds_base(base)

    return holds


def _newest_first(workspace: Workspace, system_id: int, lowest: int) -> list[int]:
    found = archived_history_timelines(workspace.repository, system_id) | {lowest}
    return sorted((t for t in found if t >= lowest), reverse=True)


def _path(workspace: Workspace, system_id: int, timeline: int) -> TimelinePath:
    repository = workspace.repository
    return timeline_path(
        repository, workspace.keyring(), repository.repository_id() or "", system_id, timeline
    )
