"""`restore postgres --pitr ... --start --port N`: everything that could keep the restored
server from starting is checked before a byte is laid out; once laid out, the server is
started as the folder's owner and watched until recovery reached the target.

Where it is left: promote, running on port N (timeline N+1); pause, running and paused at
the target; shutdown, stopped at the target. Recovery that ends early (the archive's WAL
runs out before the target, or wal-fetch fails hard) leaves the server stopped by
PostgreSQL itself; one not there within the bound leaves it running.
"""

from dataclasses import dataclass
from pathlib import Path

from engines.config import Settings
from engines.errors import JobCancelledError
from engines.jobs import JobContext
from engines.pitr.data_owner import owner_for, refuse_unless_startable
from engines.pitr.recovery_server import refuse_unless_port_free, server_bin_dir, start_server
from engines.pitr.recovery_wait import RecoveryReached, wait_for_target
from engines.pitr.restore_target import PitrTarget
from engines.pitr.wal_prefetch import clear_prefetched
from engines.servers.process import Account


@dataclass(frozen=True)
class StartPlan:
    port: int
    owner: Account
    bin_dir: Path
    timeout_s: float

    def describe(self) -> str:
        return (
            f"start PostgreSQL ({self.bin_dir / 'postgres'}) on port {self.port} as account "
            f"{self.owner.name} and wait up to {self.timeout_s:.0f} s for the target"
        )


def plan_start(
    pgdata: Path, port: int, timeout_s: float, major: int, target: PitrTarget
) -> StartPlan:
    """The checks --start makes before anything is written; one line naming what to change."""
    owner = owner_for(pgdata)
    refuse_unless_startable(pgdata, owner, target.fetch_command)
    refuse_unless_port_free(port)
    return StartPlan(port, owner, server_bin_dir(major), timeout_s)


def start_and_wait(
    plan: StartPlan,
    pgdata: Path,
    base: dict,
    target: PitrTarget,
    settings: Settings,
    context: JobContext,
) -> list[str]:
    """Start the laid-out folder's server and wait for the target; the report's lines."""
    server = start_server(pgdata, plan.port, plan.owner, plan.bin_dir)
    lines = [
        f"started PostgreSQL {server.major} on {pgdata} (port {plan.port}, account "
        f"{plan.owner.name}, pid {server.process.pid}); its log: {server.log_path}"
        + ("" if server.socket_dir == pgdata else f"; its socket folder: {server.socket_dir}")
    ]
    context.log(lines[0])
    try:
        reached = wait_for_target(
            server, target, base.get("start_lsn") or "0/0", _logins(plan.owner, settings),
            plan.timeout_s, context,
        )  # fmt: skip
    except (KeyboardInterrupt, JobCancelledError):
        # The server runs detached and goes on recovering: say where, as the timeout does.
        pg_ctl = plan.bin_dir / "pg_ctl"
        raise JobCancelledError(
            f"interrupted while waiting for {target.describe()}: the server keeps running and "
            f"recovering (pid {server.process.pid}, port {plan.port}); stop it with `{pg_ctl} "
            f"-D {pgdata} stop -m fast` as {plan.owner.name}, or let it reach the target; "
            f"its log: {server.log_path}"
            + ("" if server.socket_dir == pgdata else f"; its socket folder: {server.socket_dir}")
        ) from None
    clear_prefetched(pgdata)  # recovery is over: what the prefetch brought ahead goes
    lines.append(_reached_line(reached, target))
    lines.append(_left_line(reached, target, plan.port))
    return lines


def _logins(owner: Account, settings: Settings) -> list[tuple[str, str | None]]:
    """The folder owner's own role (peer or trust on the socket), then the configured user."""
    logins: list[tuple[str, str | None]] = [(owner.name, None)]
    if settings.postgres_configured:
        from engines.postgres.connection import target_from_settings

        configured = target_from_settings(settings)
        password = configured.password.reveal() if configured.password else None
        logins.append((configured.user, password))
    return logins


def _reached_line(reached: RecoveryReached, target: PitrTarget) -> str:
    where = [reached.stopping] if reached.stopping else []
    if reached.replayed_lsn:
        where.append(f"replayed WAL up to {reached.replayed_lsn}")
    if reached.last_transaction:
        where.append(f"last transaction at {reached.last_transaction}")
    return f"recovery reached {target.describe()}: " + ("; ".join(where) or "done")


def _left_line(reached: RecoveryReached, target: PitrTarget, port: int) -> str:
    if reached.stopped and target.action != "shutdown":
        return (
            f"shut down at the target instead of {target.action} (hot_standby is off in the "
            "folder's configuration, and PostgreSQL then shuts down): start it again to go on"
        )
    if target.action == "promote":
        timeline = f" on timeline {reached.timeline}" if reached.timeline else ""
        return f"promoted{timeline}: the server runs on port {port} and takes writes"
    if target.action == "pause":
        return (
            f"paused at the target: the server runs on port {port}, read-only; check the "
            "data, then SELECT pg_wal_replay_resume() promotes it"
        )
    return "shut down at the target: start it again to go on recovering, or to promote it"
