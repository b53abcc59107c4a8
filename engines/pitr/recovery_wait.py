"""Waiting, bounded, until a started restored server reached its recovery target.

Reached means: for promote, pg_is_in_recovery() false; for pause,
pg_get_wal_replay_pause_state() = 'paused'; for shutdown, the server exited after logging
"shutdown at recovery target". The server is asked through psql as the folder's owner on
the socket in its data folder (peer or trust authentication), else as the configured
user; the log (English, ours alone) says how recovery stopped, where, and why it ended
early. PostgreSQL (13+) stops the server itself when WAL runs out before the target or
restore_command fails hard (exit 126 or more).
"""

import contextlib
import re
import subprocess
import time
from dataclasses import dataclass

from engines.errors import JarvisError, NotFoundError
from engines.jobs import JobContext
from engines.pitr.recovery_server import RecoveryServer, run_as
from engines.pitr.restore_target import PitrTarget, lsn_value

POLL_S = 0.5
REPORT_EVERY_S = 10.0
EXIT_GRACE_S = 60.0
ASK_TIMEOUT_S = 15
_NOT_READY = (
    "starting up", "not yet accepting", "No such file", "shutting down", "Connection refused",
)  # fmt: skip
_STOPPING = re.compile(r"(recovery stopping [^\n]*)")
_LAST_TRANSACTION = re.compile(r"last completed transaction was at log time ([^\n]+)")
_TIMELINE = re.compile(r"selected new timeline ID: (\d+)")
_RESTORED = re.compile(r'restored log file "([0-9A-F]{24})" from archive')
_FETCH_FAILED = re.compile(r'FATAL:\s+could not restore file "([^"]+)" from archive: ([^\n]+)')
_FATAL = re.compile(r"(?:FATAL|PANIC):\s+([^\n]+)")
# How PostgreSQL words the two codes a shell gives (wal-fetch's own failure is 126).
_SHELL_CODES = {
    "command not executable": "exit code 126: a damaged or foreign file, a missing key, or "
    "a command the server's account cannot run",
    "command not found": "exit code 127: the command was not found",
}
ENDED_EARLY = "recovery ended before configured recovery target was reached"
SHUTDOWN = "shutdown at recovery target"


class RecoveryEndedEarlyError(NotFoundError):
    """The archive's WAL ended before the target (exit 7: what recovery needs is not there)."""


class RecoveryStoppedError(JarvisError):
    """The server stopped during recovery, or did not reach the target in time."""


@dataclass(frozen=True)
class ServerState:
    in_recovery: bool
    paused: bool
    replayed_lsn: str
    last_transaction: str


@dataclass(frozen=True)
class RecoveryReached:
    stopping: str  # the log's "recovery stopping ..." line, or ""
    replayed_lsn: str
    last_transaction: str
    timeline: int | None  # the new timeline after a promotion
    stopped: bool = False  # the server shut down at the target


def wait_for_target(
    server: RecoveryServer,
    target: PitrTarget,
    start_lsn: str,
    logins: list[tuple[str, str | None]],
    timeout_s: float,
    context: JobContext,
) -> RecoveryReached:
    """Until the target is reached; RecoveryEndedEarlyError, RecoveryStoppedError otherwise."""
    deadline = time.monotonic() + timeout_s
    next_report = time.monotonic() + REPORT_EVERY_S
    asker = _Asker(server, logins)
    state: ServerState | None = None
    while True:
        log = server.log_text()
        if server.process.poll() is not None or ENDED_EARLY in log or _FETCH_FAILED.search(log):
            return _after_exit(server, target)
        state = asker.ask() or state
        reached = state is not None and _reached(target.action, state)
        if reached or (asker.refused and _reached_by_log(target.action, log)):
            log = server.log_text()
            lsn, moment = (state.replayed_lsn, state.last_transaction) if state else ("", "")
            moment = moment or _last(_LAST_TRANSACTION, log)
            return RecoveryReached(_last(_STOPPING, log), lsn, moment, _timeline(log))
        if state is not None and state.replayed_lsn:
            _progress(context, state, start_lsn, target)
        if time.monotonic() >= next_report:
            next_report += REPORT_EVERY_S
            context.log(_recovering(server, state))
        if time.monotonic() > deadline:
            raise RecoveryStoppedError(
                f"recovery did not reach {target.describe()} within {timeout_s:.0f} s "
                f"({_recovering(server, state)}); the server keeps running (pid "
                f"{server.process.pid}, port {server.port}); read {server.log_path}"
            )
        context.raise_if_cancelled()
        time.sleep(POLL_S)


def _reached(action: str, state: ServerState) -> bool:
    if action == "promote":
        return not state.in_recovery
    if action == "pause":
        return state.in_recovery and state.paused
    return False  # shutdown: the server's exit says it


def _reached_by_log(action: str, log: str) -> bool:
    """When no login is let in: what the log says (promoted, or paused at the target)."""
    if action == "promote":
        return "archive recovery complete" in log and "ready to accept connections" in log
    if action == "pause":
        return "pausing at the end of recovery" in log or "recovery has paused" in log
    return False


def _after_exit(server: RecoveryServer, target: PitrTarget) -> RecoveryReached:
    """The server stopped (or is stopping) by itself: at the target, or early, and why."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(EXIT_GRACE_S)
    log = server.log_text()
    stopped = "the server stopped" if server.process.poll() is not None else "the server stops"
    if SHUTDOWN in log:  # asked for, or pause without hot_standby (PostgreSQL's rule)
        moment = _last(_LAST_TRANSACTION, log)
        return RecoveryReached(_last(_STOPPING, log), "", moment, None, stopped=True)
    restored = _last(_RESTORED, log)
    after = f" after segment {restored}" if restored else ""
    if ENDED_EARLY in log:
        raise RecoveryEndedEarlyError(
            f"recovery ended before {target.describe()}: the archived WAL ran out{after} "
            f"before the target was reached; {stopped}, the folder stays as recovered; "
            f"read {server.log_path}"
        )
    failed = _FETCH_FAILED.findall(log)
    if failed:
        name, why = failed[-1]
        why = _SHELL_CODES.get(why.strip(), why)
        raise RecoveryStoppedError(
            f"recovery stopped before {target.describe()}: restore_command (wal-fetch) failed "
            f"on {name} ({why}); {stopped}; read {server.log_path} for wal-fetch's reason"
        )
    fatal = _last(_FATAL, log) or f"exit code {server.process.returncode}"
    raise RecoveryStoppedError(
        f"the server stopped before reaching {target.describe()}: {fatal}; read {server.log_path}"
    )


class _Asker:
    """The server's recovery state through psql, once a login is found that works."""

    def __init__(self, server: RecoveryServer, logins: list[tuple[str, str | None]]):
        self.server = server
        self.logins = [login for login in logins if login[0]]
        self.refused = ""  # every login was turned away: the log is all there is
        pause = (
            "pg_get_wal_replay_pause_state() = 'paused'"
            if server.major >= 14
            else "pg_is_wal_replay_paused()"
        )
        self.sql = (
            "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "
            f"{pause} ELSE false END, coalesce(pg_last_wal_replay_lsn()::text, ''), "
            "coalesce(pg_last_xact_replay_timestamp()::text, '')"
        )

    def ask(self) -> ServerState | None:
        for user, password in list(self.logins):
            env = self.server.environment()
            env.update(PGCONNECT_TIMEOUT="5", PGAPPNAME="jarvis-tui recovery")
            if password:
                env["PGPASSWORD"] = password
            argv = [
                str(self.server.bin_dir / "psql"), "-X", "-A", "-t", "-q", "-w", "-F", "|",
                "-h", str(self.server.socket_dir), "-p", str(self.server.port), "-U", user,
                "-d", "postgres", "-c", self.sql,
            ]  # fmt: skip
            try:
                result = run_as(self.server.owner, argv, env=env, timeout=ASK_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired):
                return None
            if result.returncode == 0:
                self.logins = [(user, password)]  # this one works: keep to it
                recovering, paused, lsn, moment = (result.stdout.strip().split("|") + [""] * 4)[:4]
                return ServerState(recovering == "t", paused == "t", lsn, moment)
            if any(words in result.stderr for words in _NOT_READY):
                return None
            if len(self.logins) > 1:
                self.logins.remove((user, password))
            else:
                self.refused = result.stderr.strip()
        return None


def _progress(context: JobContext, state: ServerState, start_lsn: str, target: PitrTarget) -> None:
    """WAL replayed since the base backup's start, of the way to a WAL position."""
    done = max(0, lsn_value(state.replayed_lsn) - lsn_value(start_lsn))
    total = None
    if target.kind == "lsn":
        total = max(done, lsn_value(target.value) - lsn_value(start_lsn))
    context.progress(done, total, "bytes")


def _recovering(server: RecoveryServer, state: ServerState | None) -> str:
    if state is not None and state.replayed_lsn:
        moment = f", last transaction at {state.last_transaction}" if state.last_transaction else ""
        return f"recovering: replayed WAL up to {state.replayed_lsn}{moment}"
    restored = _last(_RESTORED, server.log_text())
    return f"recovering: last restored segment {restored}" if restored else "starting up"


def _last(pattern: re.Pattern, text: str) -> str:
    found = pattern.findall(text)
    return found[-1].strip() if found else ""


def _timeline(log: str) -> int | None:
    found = _last(_TIMELINE, log)
    return int(found) if found else None
