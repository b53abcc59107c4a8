"""A PostgreSQL restore's point-in-time choices, checked: shared by `restore postgres` and
the API's `POST /api/backups/{id}/restore`, which name the same options their own way
(`--target-time` on the command line, `target_time` in a request body).

The recovery target's restore_command names this jarvis-tui and the settings file the
caller was started with, as `restore postgres --pitr` writes it.
"""

from collections.abc import Callable, Mapping
from pathlib import Path

from engines.errors import JarvisError
from engines.pitr.restore_target import PitrTarget, StartRequest, parse_target

# An option's name (`target_time`) as the caller's operator spells it.
Spelling = Callable[[str], str]
# The target options, by the kind of target each names (`--target immediate`: immediate).
TARGET_OPTIONS = {
    "time": "target_time",
    "lsn": "target_lsn",
    "xid": "target_xid",
    "name": "target_name",
    "immediate": "target",
}


class RestoreChoiceError(JarvisError):
    """A choice that cannot be restored with; `option` names it (`pgdata`)."""

    def __init__(self, message: str, option: str):
        super().__init__(message)
        self.option = option


def command_line_flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def pitr_target(
    *,
    pitr: bool,
    targets: Mapping[str, str | None],
    action: str,
    timeline: int | None,
    pgdata: Path | None,
    backup: str | None,
    env_file: Path | None,
    spell: Spelling = command_line_flag,
) -> PitrTarget | None:
    """The checked recovery target (`targets`: the value of each kind of TARGET_OPTIONS
    given, None for the others); None without `pitr`."""
    chosen = [(kind, value) for kind, value in targets.items() if value is not None]
    if not pitr:
        if chosen or timeline is not None:
            option = TARGET_OPTIONS[chosen[0][0]] if chosen else "target_timeline"
            raise RestoreChoiceError(
                f"a recovery target needs {spell('pitr')} (and {spell('pgdata')} DIR)", option
            )
        if backup is None:
            raise RestoreChoiceError(
                "name the backup to restore: a backup id, `latest` or a file", "backup"
            )
        return None
    if not chosen:
        names = [spell(option) for option in TARGET_OPTIONS.values()]
        raise RestoreChoiceError(
            f"{spell('pitr')} needs a target: {', '.join(names[:-1])} or {names[-1]} immediate",
            "pitr",
        )
    if len(chosen) > 1:
        given = " and ".join(spell(TARGET_OPTIONS[kind]) for kind, _ in chosen)
        raise RestoreChoiceError(f"{given}: give one recovery target", TARGET_OPTIONS[chosen[1][0]])
    if pgdata is None:
        raise RestoreChoiceError(
            f"{spell('pitr')} needs {spell('pgdata')} DIR, an empty data folder to restore into",
            "pgdata",
        )
    from engines.config import find_env_file
    from engines.pitr.setup import restore_command as fetch_command
    from jarvis_tui.launch import jarvis_executable

    kind, value = chosen[0]
    command = fetch_command(jarvis_executable(), find_env_file(env_file))
    try:
        return parse_target(kind, value or "", action, command, timeline)
    except JarvisError as error:
        raise RestoreChoiceError(str(error), TARGET_OPTIONS[kind]) from None


def start_request(
    *,
    start: bool,
    port: int | None,
    timeout_s: float,
    pitr: bool,
    spell: Spelling = command_line_flag,
) -> StartRequest | None:
    """Whether to start the restored server and wait for the target, checked."""
    if not start:
        if port is not None:
            raise RestoreChoiceError(
                f"{spell('port')} goes with {spell('start')} (start the restored server)", "port"
            )
        return None
    if not pitr:
        raise RestoreChoiceError(
            f"{spell('start')} goes with {spell('pitr')} (a point-in-time restore into "
            f"{spell('pgdata')})",
            "start",
        )
    if port is None or not 0 < port < 65536:
        raise RestoreChoiceError(
            f"{spell('start')} needs {spell('port')} N, a free port for the restored server",
            "port",
        )
    if timeout_s <= 0:
        raise RestoreChoiceError(
            f"{spell('start_timeout')}: give the seconds to wait, e.g. 3600", "start_timeout"
        )
    return StartRequest(port, timeout_s)
