"""The health engine's checks for the console: the walkthrough's last step (the guide's
`npm run health:check`) and the Health screen."""

from dataclasses import dataclass

OK, WARNING, FAILED = "ok", "warning", "failed"


@dataclass(frozen=True)
class HealthRow:
    name: str
    state: str  # OK, WARNING or FAILED
    detail: str
    hint: str  # what to do, in the console's words ("" when nothing is to be done)


def run_health_checks_for(console) -> tuple[bool, list[tuple[bool, str]]]:
    """Blocking: every check of `jarvis-tui health`, as (passed, "name: detail") lines."""
    from engines.monitoring.health import run_health_checks

    checks = run_health_checks(console.settings, console.access.catalog(), console.clock())
    lines = [(check.ok, f"{check.name}: {check.detail}") for check in checks]
    return all(ok for ok, _ in lines), lines


def compare_restored_for(
    console, restored: list[tuple[str, str, object]]
) -> list[tuple[bool, str]]:
    """Blocking: what the walkthrough's restores (kind, backup reference, report) wrote,
    compared with their backups by the engine's `compare-restored` job in its own process."""
    from engines.actions.compare_restored import Restored
    from engines.actions.verbs import Request
    from jarvis_tui.job_process import ActionSpec, run_in_process

    parts = [Restored(kind, reference, report) for kind, reference, report in restored]
    spec = ActionSpec("compare-restored", Request(options=parts))
    outcome = run_in_process(console.env_file, spec, lambda update: None)
    if outcome.error is not None:
        return [(False, outcome.error)]
    return [(True, line) for line in outcome.value]


PITR_HINTS = {
    "PITR archiver": "the PostgreSQL log has archive_command's message; `jarvis-tui pitr check` "
    "tries one segment",
    "PITR archive lag": "the archiver falls behind: see the PostgreSQL log and the repository's "
    "disk; `jarvis-tui pitr check`",
    "PITR window": "check BACKUP_DIR and the encryption key in Settings (5)",
    "PITR gaps": "take a base backup now (`jarvis-tui backup postgres --mode base`): a restore "
    "from an older one stops at the gap",
}


def _hint(name: str, detail: str) -> str:
    """What to do about a failed check, in the console's words."""
    if name in PITR_HINTS:
        return PITR_HINTS[name]
    if name == "settings":
        return "open Settings (5): each problem is shown beside its variable"
    if name.endswith(" reachable") and name != "S3 reachable":
        source = name.removesuffix(" reachable")
        return f"start the {source} server or correct its connection in Settings (5)"
    if name == "repository writable":
        return "BACKUP_DIR must be a writable folder: check it in Settings (5)"
    if name == "free space":
        return "free disk space, or preview retention (m, c) to see what cleanup removes"
    if name in ("S3 reachable", "browsed repository"):
        return "check the S3 settings in Settings (5) and the network"
    if name.endswith(" copies"):
        return "sync the copies: Catalog (2), then s"
    if name == "encryption key":
        if "not configured" in detail:
            return "put the old key back in BACKUP_ENCRYPTION_KEY_PREVIOUS (Settings, 5)"
        return "set BACKUP_ENCRYPTION_KEY in Settings (5), or press k for a new key"
    if name == "scheduler":
        return "keep this console (or the headless scheduler service) running"
    if name.endswith(" backup age"):
        return f"back up {name.removesuffix(' backup age')} now: b"
    return ""


def health_rows(console) -> list[HealthRow]:
    """Blocking: every check of `jarvis-tui health`, with its state and a hint."""
    from engines.errors import JarvisError
    from engines.monitoring.health import run_health_checks

    try:
        checks = run_health_checks(console.settings, console.access.catalog(), console.clock())
    except JarvisError as error:  # as `jarvis-tui health` says it
        return [HealthRow("catalog", FAILED, str(error), "check BACKUP_CATALOG_PATH (5)")]
    rows = []
    for check in checks:
        if not check.ok:
            rows.append(
                HealthRow(check.name, FAILED, check.detail, _hint(check.name, check.detail))
            )
            continue
        state = WARNING if check.warning else OK
        rows.append(HealthRow(check.name, state, check.detail, check.warning))
    return rows
