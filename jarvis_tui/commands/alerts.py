"""`alerts test` and `alerts list`: the channels and the alert history."""

import argparse
import sys
from collections.abc import Sequence

from engines.alerts import AlertDispatcher
from engines.catalog import Catalog
from engines.catalog.times import utc_now
from engines.scheduling.clock import configured_timezone
from engines.scheduling.moments import moment_words
from jarvis_tui.commands.context import settings_from
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.output import print_json

CHANNEL_VARIABLES = (
    "PUSHOVER_USER_KEY and PUSHOVER_API_TOKEN, SLACK_WEBHOOK_URL, or NOTIFICATION_EMAIL "
    "(with SMTP_HOST/SMTP_PORT)"
)


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    group = commands.add_parser("alerts", help="alert channels and history")
    actions = group.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    test = actions.add_parser("test", help="send a test message to each configured channel")
    test.set_defaults(handler=run_alerts_test)
    listing = actions.add_parser("list", help="recent alerts with their delivery per channel")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_alerts_list)


def run_alerts_test(args: argparse.Namespace) -> ExitCode:
    settings = settings_from(args)
    with Catalog.open(settings.catalog_path) as catalog:
        results = AlertDispatcher(catalog, settings).send_test()
    if not results:
        print(
            f"jarvis-tui: no alert channel is configured; set {CHANNEL_VARIABLES}", file=sys.stderr
        )
        return ExitCode.FAILED
    for result in results:
        print(f"{result.channel:9} {'sent' if result.ok else 'failed'}  {result.detail}")
    return ExitCode.OK if all(r.ok for r in results) else ExitCode.FAILED


def run_alerts_list(args: argparse.Namespace) -> ExitCode:
    settings = settings_from(args)
    with Catalog.open(settings.catalog_path) as catalog:
        alerts = catalog.list_alerts(args.limit)
    if args.json:
        print_json(
            [
                {
                    "id": a.id,
                    "at": a.at.isoformat(),
                    "severity": a.severity,
                    "kind": a.kind,
                    "message": a.message,
                    "delivery": a.delivery,
                }
                for a in alerts
            ]
        )
        return ExitCode.OK
    if not alerts:
        print("no alerts yet")
    now, zone = utc_now(), configured_timezone(settings)
    for alert in alerts:
        delivery = "; ".join(f"{k}: {v}" for k, v in sorted(alert.delivery.items())) or "pending"
        when = moment_words(alert.at, now, zone)  # "09:30 yesterday (15 h ago)"
        print(f"{when}  {alert.severity:8} {alert.kind}: {alert.message}")
        print(f"    {delivery}")
    return ExitCode.OK
