"""The walkthrough's last step (the guide's `npm run health:check`) through the health engine."""


def run_health_checks_for(console) -> tuple[bool, list[tuple[bool, str]]]:
    """Blocking: every check of `jarvis-tui health`, as (passed, "name: detail") lines."""
    from engines.monitoring.health import run_health_checks

    checks = run_health_checks(console.settings, console.access.catalog(), console.clock())
    lines = [(check.ok, f"{check.name}: {check.detail}") for check in checks]
    return all(ok for ok, _ in lines), lines
