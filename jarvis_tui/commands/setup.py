"""`init`, `keygen` and `config show|check`."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engines.actions.initialize import initialize
from engines.config import Settings, load_settings
from engines.errors import JarvisError
from engines.joblog import redact, register_secrets
from engines.keys import LOST_KEY_WARNING, key_source, keyring_from_settings, store_new_key
from engines.pipeline.crypto import MasterKey, generate_key_hex
from engines.settings_check import check_settings
from jarvis_tui.commands.context import settings_from
from jarvis_tui.exit_codes import ExitCode, exit_code_for
from jarvis_tui.output import print_json, print_table


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    init = commands.add_parser("init", help="create the repository, catalog and log folders")
    init.set_defaults(handler=run_init)

    keygen = commands.add_parser("keygen", help="generate a 64-hex-character encryption key")
    keygen.add_argument(
        "--append-to", type=Path, metavar="ENV_FILE", help="store it in this .env (mode 0600)"
    )
    keygen.add_argument(
        "--rotate",
        action="store_true",
        help="replace the key in ENV_FILE, keeping the old one in BACKUP_ENCRYPTION_KEY_PREVIOUS",
    )
    keygen.set_defaults(handler=run_keygen)

    config = commands.add_parser("config", help="show or check the effective settings")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the effective settings, secrets masked")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=run_config_show)
    check = actions.add_parser("check", help="validate the settings; non-zero exit on errors")
    check.set_defaults(handler=run_config_check)


def run_init(args: argparse.Namespace) -> ExitCode:
    report = initialize(settings_from(args))
    print(f"repository  {report.repository}")
    print(f"catalog     {report.catalog}")
    print(f"logs        {report.log_dir}")
    for path in report.removed_temporaries:
        print(f"removed abandoned temporary {path}")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return ExitCode.OK


def run_keygen(args: argparse.Namespace) -> ExitCode:
    if args.rotate and args.append_to is None:
        print("jarvis-tui keygen: --rotate needs --append-to ENV_FILE", file=sys.stderr)
        return ExitCode.USAGE
    if args.append_to is None:
        key = generate_key_hex()
        print(key)
        print(f"key id {MasterKey.from_hex(key).key_id}. {LOST_KEY_WARNING}", file=sys.stderr)
        return ExitCode.OK
    key_id = store_new_key(args.append_to, rotate=args.rotate)
    print(f"stored a new BACKUP_ENCRYPTION_KEY (key id {key_id}) in {args.append_to} (mode 0600)")
    print(LOST_KEY_WARNING, file=sys.stderr)
    return ExitCode.OK


def run_config_show(args: argparse.Namespace) -> ExitCode:
    settings = load_settings(env_file=args.env_file, strict=False)
    rows = settings.display_rows()
    if args.json:
        print_json(
            {
                "env_file": settings.env_file,
                "settings": {
                    name: {"value": value, "from": origin} for name, value, origin in rows
                },
                "problems": list(settings.problems),
            }
        )
    else:
        print(f"settings file: {settings.env_file or '(none found)'}")
        print_table(("VARIABLE", "VALUE", "FROM"), rows)
        for problem in settings.problems:
            print(f"error: {problem}", file=sys.stderr)
    return ExitCode.INVALID_SETTINGS if settings.problems else ExitCode.OK


def run_config_check(args: argparse.Namespace) -> ExitCode:
    check = check_settings(args.env_file)
    settings = check.settings
    # The console lists the same problems (check_settings); warnings stop or shorten a
    # backup but leave the settings loadable, so they do not change the exit code.
    for problem in check.warnings:
        print(f"warning: {problem}", file=sys.stderr)
    for problem in check.errors:
        print(f"error: {problem}", file=sys.stderr)
    if check.errors:
        print(f"{len(check.errors)} problem(s) found", file=sys.stderr)
        return ExitCode.INVALID_SETTINGS
    print(f"settings are valid ({settings.env_file or 'environment only'})")
    if (
        settings.backup_encryption_key_secret_id
        or settings.backup_encryption_key_previous_secret_id
    ):
        return _check_key_secrets(settings)
    return ExitCode.OK


def _check_key_secrets(settings: Settings) -> ExitCode:
    """Read the keys kept in AWS Secrets Manager, as a backup would, and say what came."""
    register_secrets(settings.secret_values())
    try:
        keyring = keyring_from_settings(settings)
    except JarvisError as error:
        print(f"error: {redact(str(error))}", file=sys.stderr)
        return exit_code_for(error)
    previous = f", {len(keyring.previous)} previous key(s)" if keyring.previous else ""
    print(f"encryption key: from {key_source(settings)}, key id {keyring.current.key_id}{previous}")
    return ExitCode.OK
