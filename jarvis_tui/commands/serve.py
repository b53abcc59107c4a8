"""`serve`: the REST API in the foreground, until SIGTERM or Ctrl-C."""

import argparse
from collections.abc import Sequence

from engines.errors import UsageError
from engines.joblog import configure_logging
from jarvis_tui.api.server import DEFAULT_HOST, DEFAULT_PORT, ServeOptions, prepare
from jarvis_tui.commands.context import settings_from
from jarvis_tui.exit_codes import ExitCode


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the REST API (the guide's /api/backups, /metrics) on 127.0.0.1:4000",
        description="Serve the guide's REST API and Prometheus metrics on the same catalog "
        "as the CLI and the console. Every endpoint but /api/live needs "
        "`Authorization: Bearer $JARVIS_API_TOKEN` (at least 32 characters). "
        "`--run-scheduled --serve` runs the schedules and the API in one service.",
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (loopback)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (0: any free port, printed)"
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without a token; refused unless the address is loopback",
    )
    serve.set_defaults(handler=run_serve)


def serve_options(address: str) -> ServeOptions:
    """`HOST:PORT`, `[::1]:PORT` or `PORT`, as `--run-scheduled --serve` takes it."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--serve {address!r}: expected HOST:PORT, such as 127.0.0.1:4000")
    return ServeOptions(host=host, port=int(port))


def run_serve(args: argparse.Namespace) -> ExitCode:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected a port from 0 to 65535")
    settings = settings_from(args)
    configure_logging(settings.log_dir, to_stdout=True)
    options = ServeOptions(args.host, args.port, args.insecure_no_auth)
    server = prepare(settings, args.env_file, options)
    print(server.announce(), flush=True)
    server.run()
    return ExitCode.OK
