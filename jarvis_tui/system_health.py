"""The walkthrough's last step (the guide's `npm run health:check`) through the health engine."""


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
