"""`send a test alert` from the Alerts pane, through the engine's alert dispatcher."""

from jarvis_tui.engine_access import EngineAccess


def send_test_alert(access: EngineAccess) -> str:
    """Send to every configured channel; one line per channel saying what happened."""
    from engines.alerts import AlertDispatcher

    results = AlertDispatcher(access.catalog(), access.settings).send_test()
    if not results:
        return (
            "No alert channel is configured (PUSHOVER_USER_KEY and PUSHOVER_API_TOKEN, "
            "SLACK_WEBHOOK_URL, NOTIFICATION_EMAIL); the test was recorded only."
        )
    return "\n".join(f"{r.channel}: {r.text}" for r in results)
