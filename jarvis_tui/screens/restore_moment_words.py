"""What the PostgreSQL wizard says and asks the engine for on its moment-in-time way: the
restore options, the consequence above the typed confirmation, and what to do next."""

from pathlib import Path
from typing import Any

from rich.text import Text

from jarvis_tui.pitr_access import PitrTarget, StartRequest, moment_target
from jarvis_tui.restore_access import PostgresRestoreOptions


def plan_target(plan: Any, env_file: Path | None) -> PitrTarget:
    """The plan's target (checked on its step already), restore_command included."""
    return moment_target(plan.target_kind, plan.target_value, plan.target_action, env_file)


def moment_options(plan: Any, env_file: Path | None, dry_run: bool) -> PostgresRestoreOptions:
    return PostgresRestoreOptions(
        dry_run=dry_run,
        pgdata=Path(plan.pgdata),
        pitr=plan_target(plan, env_file),
        start=StartRequest(int(plan.port)) if plan.start else None,
    )


def folder_name(plan: Any) -> str:
    """What the operator types to confirm: the data folder's own name."""
    return Path(plan.pgdata).name


def moment_consequence(plan: Any, target: PitrTarget) -> Text:
    text = Text.assemble(
        "Restore the whole cluster to ",
        (target.describe(), "bold"),
        f", then {target.action}, into ",
        (plan.pgdata, "bold"),
        ".\n",
        "The newest base backup that ended before the target (the dry run named it) is laid "
        "out there and told to recover through the archived WAL (restore_command, "
        "recovery.signal); archive_mode is off in the copy.\n",
        "Nothing existing is touched: a folder with files or a running server is refused.\n",
    )
    if plan.start:
        text.append(
            f"Then PostgreSQL starts on it (port {plan.port}, as the folder's owner) and the "
            "restore waits until recovery reached the target.\n"
        )
    return text


def moment_next_steps(plan: Any, target: PitrTarget, outcome: str | None) -> list[str]:
    folder = plan.pgdata
    if outcome != "succeeded":
        return [
            "The cause is above and in the job log (Jobs, 3); the live server was not touched.",
            "A missing WAL segment, a taken port or a folder PostgreSQL cannot run from is "
            "found before anything is written: fix it (or pick an earlier target) and run the "
            f"wizard again, the dry run checks them. Empty {folder} first if it was written.",
        ]
    if plan.start:
        return [
            f"The restored server runs on port {plan.port} (the result above says where "
            f"recovery stopped; its log is in {folder}/log). Check it (psql -p {plan.port}) "
            "before pointing anything at it; the live server was not touched.",
            "Once it is the server in use, set archiving up for it (jarvis-tui pitr setup) and "
            "take a base backup (jarvis-tui backup postgres --mode base).",
        ]
    started = {
        "promote": "once it reached the target it is promoted: a server one can write to",
        "pause": "it pauses read-only at the target: look, then SELECT pg_wal_replay_resume() "
        "to promote it",
        "shutdown": "it shuts down at the target",
    }[target.action]
    return [
        f"Start PostgreSQL on it, as its own account and on a free port: pg_ctl -D {folder} "
        f"-o '-p 5433' -l {folder}/recovery.log start. It recovers through wal-fetch to "
        f"{target.describe()}; {started}.",
        "Check the copy (psql -p 5433) before pointing anything at it; the live server was "
        "not touched.",
        "Once it is the server in use, set archiving up for it (jarvis-tui pitr setup) and "
        "take a base backup (jarvis-tui backup postgres --mode base).",
    ]
