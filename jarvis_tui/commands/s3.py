"""`s3 audit` and `s3 lifecycle [--apply]`: the bucket against the guide's advice."""

import argparse
import json
import sys
from collections.abc import Sequence

from engines.actions.verbs import Request
from engines.destinations.s3_lifecycle import LifecycleOptions, rule_prefix
from jarvis_tui.commands.context import open_workspace, run_with_progress
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.output import print_json


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    s3 = commands.add_parser(
        "s3",
        help="check the S3 bucket against the guide's advice, and set its lifecycle rules",
        description="Commands about the bucket of S3_BUCKET itself (not the backups in it).",
    )
    actions = s3.add_subparsers(dest="s3_command", metavar="SUBCOMMAND", required=True)
    audit = actions.add_parser(
        "audit",
        help="check versioning, encryption, public access, logging, lifecycle rules",
        description="Check the bucket against the guide's S3 security advice: IAM role "
        "rather than access keys, versioning, MFA delete (advice only: S3 refuses "
        "lifecycle rules with it), default encryption (or S3_SSE), public access blocked, "
        "access logging, lifecycle rules consistent with retention. One line per check "
        "with what to do; exit 0 when all are ok, 1 when any is missing or could not be "
        "checked. Changes nothing.",
    )
    audit.add_argument("--json", action="store_true", help="the checks as JSON")
    audit.set_defaults(handler=run_audit)

    lifecycle = actions.add_parser(
        "lifecycle",
        help="print (or --apply) lifecycle rules for S3_PREFIX consistent with retention",
        description="Derive the lifecycle rule for S3_PREFIX from the retention policy: "
        "abort unfinished multipart uploads, remove deleted or replaced versions after a "
        "while, never expire a current object (cleanup deletes what retention no longer "
        "keeps) and never move one to GLACIER or DEEP_ARCHIVE, which restores cannot read. "
        "Prints the rule and the bucket's whole configuration with it; --apply sets it, "
        "keeping the rules of other prefixes.",
    )
    lifecycle.add_argument("--apply", action="store_true", help="set the rules on the bucket")
    lifecycle.add_argument("--json", action="store_true", help="the rules as JSON")
    lifecycle.add_argument(
        "--abort-uploads-after",
        type=int,
        default=LifecycleOptions.abort_uploads_days,
        metavar="DAYS",
        help="abort unfinished multipart uploads after DAYS (default %(default)s)",
    )
    lifecycle.add_argument(
        "--keep-deleted",
        type=int,
        default=LifecycleOptions.keep_deleted_days,
        metavar="DAYS",
        help="remove deleted or replaced versions DAYS later (default %(default)s)",
    )
    lifecycle.add_argument(
        "--transition",
        metavar="CLASS",
        help="move objects to CLASS (STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, "
        "GLACIER_IR; never an archive class) after --transition-after days",
    )
    lifecycle.add_argument(
        "--transition-after",
        type=int,
        metavar="DAYS",
        help="days before the transition (default: the daily tier, at least S3's minimum)",
    )
    lifecycle.set_defaults(handler=run_lifecycle)


def run_audit(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        report = run_with_progress(workspace, "s3-audit", Request())
    if args.json:
        print_json(report.as_json())
    else:
        print(f"s3 audit: bucket {report.bucket}, prefix {report.prefix or '(whole bucket)'}")
        for check in report.checks:
            todo = f"; to fix: {check.fix}" if check.fix and check.status != "ok" else ""
            print(f"{check.status:<8} {check.name}: {check.detail}{todo}")
        failing = len(report.failing)
        summary = f"{failing} of {len(report.checks)} not ok" if failing else "all ok"
        print(f"s3 audit: {summary}")
    return ExitCode.OK if report.ok else ExitCode.FAILED


def run_lifecycle(args: argparse.Namespace) -> ExitCode:
    options = LifecycleOptions(
        abort_uploads_days=args.abort_uploads_after,
        keep_deleted_days=args.keep_deleted,
        transition_class=args.transition,
        transition_days=args.transition_after,
    )
    request = Request(options=options, dry_run=not args.apply)
    with open_workspace(args) as workspace:
        report = run_with_progress(workspace, "s3-lifecycle", request)
    if args.json:
        print_json(report.as_json())
    else:
        _print_lifecycle(report, args.apply)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return ExitCode.FAILED if report.warnings or report.unreadable else ExitCode.OK


def _print_lifecycle(report, applying: bool) -> None:
    scope = report.prefix or "(whole bucket)"
    retention = report.policy.describe()
    print(f"s3 lifecycle: bucket {report.bucket}, prefix {scope}, retention {retention}")
    print(f"rule {report.rule['ID']}:")
    for line in report.described:
        print(f"  {line}")
    merged = report.merged
    if merged is None:
        print(f"the bucket's own rules: unknown ({report.unreadable})")
    else:
        for rule in merged.replaced:
            verb = "replaced" if report.applied else "would replace"
            was = json.dumps(rule, default=str, sort_keys=True)
            print(f"{verb} rule {rule.get('ID') or '(no id)'}: {was}")
        if merged.added:
            print(f"{'added' if report.applied else 'would add'} rule {report.rule['ID']}")
        for rule in merged.kept:
            verb = "kept" if report.applied or not merged.changed else "would keep"
            print(f"{verb} rule {rule.get('ID') or '(no id)'} (prefix {rule_prefix(rule)!r})")
        if not merged.changed:
            print("the bucket already has this rule; nothing to change")
    if not applying:
        print(
            f"the bucket's configuration with it (aws s3api put-bucket-lifecycle-configuration "
            f"--bucket {report.bucket} --lifecycle-configuration file://lifecycle.json):"
        )
        print(json.dumps(report.configuration, indent=2, default=str))
        if merged is None or merged.changed:
            print("nothing was changed; run with --apply to set it")
