"""`jarvis-tui --run-scheduled`: the schedules in the foreground, for a service manager.

Logs go to stdout (the journal) and to backup.log. When another process (the
console, or a second service) already runs the schedules, this one stands by
and takes over once that process is gone. SIGTERM or SIGINT stops new runs,
lets a running job finish for BACKUP_SHUTDOWN_GRACE_SECONDS, then cancels it
and exits 0. With `--serve` the REST API runs in the same process (its own thread), from
before the schedules start until after they stop. The schedules' verbs (backup,
cleanup, restore drill) run in this process, in the scheduler's jobs: there is no
screen to keep responsive. Never imports textual.
"""

import argparse
import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from engines.config import load_settings
from engines.destinations.read_only import refusal
from engines.joblog import configure_logging, register_secrets
from engines.scheduling.scheduler import Scheduler
from engines.scheduling.schedules import describe_holder
from jarvis_tui.exit_codes import ExitCode

if TYPE_CHECKING:
    from jarvis_tui.api.server import ServeOptions

logger = logging.getLogger("jarvis.headless")

STANDBY_RETRY_S = 15.0
WAKE_INTERVAL_S = 1.0
API_STOP_WAIT_S = 15.0


def run_scheduled(
    env_file: Path | None,
    *,
    standby_retry_s: float = STANDBY_RETRY_S,
    serve: "ServeOptions | None" = None,
) -> ExitCode:
    settings = load_settings(env_file=env_file)
    if settings.browsing:
        where = f"s3://{settings.s3_bucket}/{settings.browse_prefix}"
        raise refusal("--run-scheduled", where)
    register_secrets(settings.secret_values())
    configure_logging(settings.log_dir, to_stdout=True)
    api = None
    if serve is not None:
        from jarvis_tui.api.server import prepare

        api = prepare(settings, env_file, serve)
        logger.info("%s", api.announce())
        api_thread = api.start()
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("%s received: no new runs; stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    scheduler = Scheduler(settings, purpose="headless")
    try:
        logger.info(
            "jarvis-tui --run-scheduled, pid %d, repository %s",
            os.getpid(),
            settings.repository_dir,
        )
        standing_by = False
        while not stop.is_set() and not scheduler.start():
            if not standing_by:
                holder = describe_holder(scheduler.holder)
                logger.info("standing by: the schedules are run by %s", holder)
                standing_by = True
            stop.wait(standby_retry_s)
        while not stop.is_set():
            stop.wait(WAKE_INTERVAL_S)
        if scheduler.elected and not scheduler.stop():
            logger.error("exiting with a job still running; the next start marks it failed")
            logging.shutdown()
            os._exit(ExitCode.OK)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if api is not None:
            api.stop()
            api_thread.join(API_STOP_WAIT_S)
    logger.info("stopped")
    return ExitCode.OK


def run_scheduled_command(args: argparse.Namespace) -> ExitCode:
    serve = None
    if args.serve is not None:
        from jarvis_tui.commands.serve import serve_options

        serve = serve_options(args.serve)
    return run_scheduled(args.env_file, serve=serve)
