"""`status`, `cleanup`, `health`, `drill` and `verify --all` (with `alerts` from its module)."""

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime

from engines.actions.verbs import Request
from engines.catalog import Catalog
from engines.catalog.times import utc_now
from engines.config import load_settings
from engines.errors import JarvisError
from engines.joblog import register_secrets
from engines.monitoring.health import HealthCheck, run_health_checks
from engines.monitoring.status import collect_status, format_age
from engines.repository.offsite import OffsiteStatus
from engines.repository.whereabouts import SYNC_HINT
from engines.scheduling.clock import configured_timezone
from jarvis_tui.commands.context import open_workspace, run_with_progress
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.output import print_json, print_table


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    status = commands.add_parser(
        "status",
        help="schedules, last runs, last good backup per source and off-site copies "
        "(backup:status)",
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=run_status)

    cleanup = commands.add_parser("cleanup", help="apply GFS retention and prune (backup:cleanup)")
    cleanup.add_argument(
        "--dry-run", action="store_true", help="show what would be kept and deleted, and why"
    )
    cleanup.add_argument("--json", action="store_true")
    cleanup.set_defaults(handler=run_cleanup_command)

    health = commands.add_parser("health", help="check everything backups need (health:check)")
    health.add_argument("--json", action="store_true")
    health.set_defaults(handler=run_health)

    drill = commands.add_parser(
        "drill", help="restore each source's newest backup into scratch targets and compare"
    )
    drill.set_defaults(handler=run_drill)


def _local(moment: datetime | None, zone) -> str:
    return "-" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def run_status(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        report = collect_status(workspace.settings, workspace.catalog, utc_now())
        zone = configured_timezone(workspace.settings)
        max_age = workspace.settings.backup_max_age_hours
    if args.json:
        print_json(report.to_json())
        return ExitCode.OK
    print(f"Schedules (times in {report.timezone})")
    print_table(
        ("SCHEDULE", "WHEN", "NEXT RUN", "LAST RUN", "RESULT"),
        [
            (
                s.name,
                s.words if s.enabled else f"off ({s.words})",
                _local(s.next_run, zone),
                _local(s.last_run.planned_at if s.last_run else None, zone),
                s.last_run.outcome if s.last_run else "never ran",
            )
            for s in report.schedules
        ],
    )
    print(f"\nLast good backup per source (alert after {max_age} h)")
    if report.sources:
        print_table(
            ("SOURCE", "BACKUP", "TAKEN", "AGE", "STATE"),
            [
                (
                    s.source,
                    s.set_id or "none yet",
                    _local(s.created_at, zone),
                    format_age(s.age),
                    "TOO OLD" if s.too_old else "ok",
                )
                for s in report.sources
            ],
        )
    else:
        print("no source is configured")
    if report.offsite:
        print_offsite(report.offsite, zone)
    print(f"\nScheduler: {report.scheduler_text}")
    if report.next_text:
        print(f"Next: {report.next_text}")
    if report.open_alerts:
        print("Open alerts:")
        for alert in report.open_alerts:
            print(f"  {alert}")
    return ExitCode.OK


def print_offsite(offsite: list[OffsiteStatus], zone) -> None:
    print("\nOff-site copies (sets complete on each copy destination)")
    print_table(
        (
            "DESTINATION",
            "COMPLETE",
            "NOT COMPLETE",
            "FAILED COPIES",
            "LAST COPY",
            "NEWEST NOT OFF-SITE",
        ),
        [
            (
                o.destination,
                o.complete_sets,
                o.incomplete_sets,
                o.failed_copies,
                _local(o.last_copy_at, zone),
                o.newest_not_offsite.id if o.newest_not_offsite else "none",
            )
            for o in offsite
        ],
    )
    behind = [o for o in offsite if o.newest_not_offsite is not None]
    for o in behind:
        print(f"{o.destination} lacks, of {o.newest_not_offsite.id}:")
        for gap in o.newest_gaps:
            print(f"  {gap.removeprefix(f'{o.destination}: ')}")
    if behind:
        print(SYNC_HINT)


def run_cleanup_command(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        report = run_with_progress(workspace, "cleanup", Request(dry_run=args.dry_run))
    if args.json:
        print_json(
            {
                "dry_run": report.dry_run,
                "policy": report.policy.describe(),
                "sets": [
                    {
                        "id": d.candidate.set_id,
                        "kind": d.candidate.kind,
                        "created_at": d.candidate.created_at.isoformat(),
                        "keep": d.keep,
                        "reasons": d.reasons,
                    }
                    for d in report.decisions
                ],
                "unfinished": report.unfinished,
                "deleted": report.deleted,
                "problems": report.problems,
                "damaged": report.damaged,
                "pruned": report.pruned,
                "wal": [
                    {
                        "system_id": str(c.system_id),
                        "oldest_kept": c.oldest_kept,
                        "removed" if not report.dry_run else "would_remove": c.count,
                    }
                    for c in report.wal
                ],
            }
        )
    else:
        print(f"retention: {report.policy.describe()}" + (" (dry run)" if args.dry_run else ""))
        print_table(
            ("SET", "STATUS", "CREATED (UTC)", "DECISION"),
            [
                (
                    d.candidate.set_id,
                    d.candidate.status,
                    d.candidate.created_at.strftime("%Y-%m-%d %H:%M"),
                    d.text,
                )
                for d in report.decisions
            ],
        )
        if report.unfinished:
            verb = "would be finished" if report.dry_run else "finished first"
            print(
                f"{len(report.unfinished)} set(s) whose deletion began earlier {verb}: "
                + ", ".join(report.unfinished)
            )
        if report.dry_run:
            print(f"dry run: {len(report.to_delete)} set(s) would be deleted; nothing changed")
        else:
            print(f"{len(report.deleted)} set(s) deleted")
        for pruned in report.pruned:
            print(f"pruned {pruned}")
        for cluster in report.wal:
            print(cluster.describe(report.dry_run))
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    if report.damaged:  # as `prune` alone: damage is exit 4, whatever else happened
        return ExitCode.INTEGRITY
    return ExitCode.FAILED if report.problems else ExitCode.OK


def run_health(args: argparse.Namespace) -> ExitCode:
    settings = load_settings(env_file=args.env_file, strict=False)
    register_secrets(settings.secret_values())
    try:
        with Catalog.open(settings.catalog_path) as catalog:
            checks = run_health_checks(settings, catalog, utc_now())
    except JarvisError as error:
        checks = [HealthCheck("catalog", False, str(error))]
    healthy = all(check.ok for check in checks)
    if args.json:
        print_json({"healthy": healthy, "checks": [c.to_json() for c in checks]})
    else:
        print_table(
            ("CHECK", "STATE", "DETAIL"),
            [(c.name, _health_state(c), _health_detail(c)) for c in checks],
        )
        failed = [c for c in checks if not c.ok]
        warned = [c.name for c in checks if c.ok and c.warning]
        print(
            ("healthy" if healthy else f"{len(failed)} problem(s): ")
            + ", ".join(c.name for c in failed)
            + (f" ({len(warned)} warning(s): {', '.join(warned)})" if warned else "")
        )
    return ExitCode.OK if healthy else ExitCode.FAILED


def _health_state(check: HealthCheck) -> str:
    if not check.ok:
        return "FAIL"
    return "WARN" if check.warning else "ok"


def _health_detail(check: HealthCheck) -> str:
    return f"{check.detail}; {check.warning}" if check.ok and check.warning else check.detail


def run_drill(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        report = run_with_progress(workspace, "drill", Request())
    for check in report.checks:
        print(f"{'ok' if check.ok else 'FAILED':6}  {check.relpath}  {check.detail}")
    for source in report.untested_sources:
        print(f"none    {source}: configured but never backed up")
    if not report.checks:
        print("nothing to drill: no good backup in the catalog yet")
    return ExitCode.INTEGRITY if report.failed else ExitCode.OK


def run_verify_all(args: argparse.Namespace) -> ExitCode:
    """`verify --all [--sample PERCENT] [--read-data]`, reached through the `verify` command."""
    sample = 100.0 if args.sample is None else args.sample
    with open_workspace(args) as workspace:
        request = Request(sample_percent=sample, read_data=args.read_data)
        checks = run_with_progress(workspace, "verify-all", request)
    if args.json:
        print_json(
            [{"artifact": c.artifact.relpath, "ok": c.ok, "problems": c.problems} for c in checks]
        )
    else:
        for check in checks:
            print(f"{'ok' if check.ok else 'FAILED':6}  {check.artifact.relpath}")
            for problem in check.problems:
                print(f"        {problem}")
        print(
            f"{len(checks)} artifact(s) checked ({sample:g}% sample, least recently verified first)"
        )
    failed = [c for c in checks if not c.ok]
    if failed:
        print(f"{len(failed)} artifact(s) failed verification", file=sys.stderr)
        return ExitCode.INTEGRITY
    return ExitCode.OK
