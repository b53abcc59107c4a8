"""The throwaway cluster benchmarks/pitr.py works on: pgbench WAL made to measure, the
archiver's state as PostgreSQL sees it, archive_command switched and reloaded, and
restored data folders started in place.

Under root PostgreSQL runs as an unprivileged account, which cannot reach the venv's
interpreter under /root (pyenv): jarvis-tui then runs such that the commands it writes
name a script that runs the same code through the system's Python of the same version
(as tests/test_pitr_start.py does).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / ".venv" / "bin" / "jarvis-tui"
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
SEGMENT = 16 * 1024 * 1024
sys.path.insert(0, str(ROOT))

from engines.servers.process import Account, chown_tree, reachable_by  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402


class Cluster(PostgresServer):
    """A throwaway cluster; one made from a laid-out data folder takes that folder as it is
    (moved, not copied: the copy would count in the restore's time)."""

    def _adopt(self, source: Path) -> None:
        shutil.move(source, self.data_dir)
        for leftover in ("postmaster.pid", "postmaster.opts"):
            (self.data_dir / leftover).unlink(missing_ok=True)
        chown_tree(self.data_dir, self.account)
        os.chmod(self.data_dir, 0o700)

    def tool_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return {**env, **self.env()}

    def value(self, sql: str, dbname: str = "postgres"):
        return self.execute(sql, dbname=dbname)[0][0]

    def wal_position(self) -> int:
        return int(self.value("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"))

    def ready_files(self) -> int:
        """WAL files waiting for archive_command (PostgreSQL's own .ready marks)."""
        names = os.listdir(self.data_dir / "pg_wal" / "archive_status")
        return sum(1 for name in names if name.endswith(".ready"))

    def archiver(self) -> tuple[int, int, str | None]:
        """archived_count, failed_count, last_archived_wal of pg_stat_archiver."""
        row = self.execute(
            "SELECT archived_count, failed_count, last_archived_wal FROM pg_stat_archiver"
        )[0]
        return int(row[0]), int(row[1]), row[2]

    def set_archive_command(self, command: str) -> None:
        from psycopg import sql

        self.execute(sql.SQL("ALTER SYSTEM SET archive_command = {}").format(sql.Literal(command)))
        self.execute("SELECT pg_reload_conf()")

    def wait_archived(self, timeout_s: float, since_count: int = -1) -> float:
        """Seconds until no .ready file is left (and, with since_count, archived_count grew
        past it)."""
        started = time.perf_counter()
        while True:
            elapsed = time.perf_counter() - started
            if self.ready_files() == 0 and self.archiver()[0] >= since_count:
                return elapsed
            if elapsed > timeout_s:
                failed = self.archiver()[1]
                sys.exit(
                    f"archiving did not finish in {timeout_s:.0f} s ({self.ready_files()} "
                    f".ready files left, {failed} failures): see {self.log_path}"
                )
            time.sleep(0.02)

    def pgbench(self, *args: str) -> list[str]:
        return [self.binary("pgbench"), "-n", *args, "pgbench"]

    def make_wal(self, amount: int, clients: int, script: Path | None) -> float:
        """Run pgbench (its TPC-B, or `script`) until the server has written `amount` bytes
        of WAL; its seconds."""
        start = self.wal_position()
        argv = self.pgbench("-c", str(clients), "-j", str(min(clients, 2)), "-T", "100000")
        if script is not None:
            rows = self.value("SELECT count(*) FROM pgbench_accounts", dbname="pgbench")
            argv[-1:-1] = ["-f", str(script), "-D", f"rows={rows}"]
        started = time.perf_counter()
        bench = subprocess.Popen(argv, env=self.tool_env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)  # fmt: skip
        try:
            while self.wal_position() - start < amount:
                if bench.poll() is not None:
                    assert bench.stderr is not None
                    sys.exit(f"pgbench ended early: {bench.stderr.read().decode()[-500:]}")
                time.sleep(0.05)
        finally:
            # Not SIGINT: a shell's background job, and so pgbench, may be ignoring it.
            bench.terminate()
            try:
                bench.wait(timeout=60)
            except subprocess.TimeoutExpired:
                bench.kill()
                bench.wait()
        return time.perf_counter() - started

    def next_second(self) -> None:
        """A base backup's end is recorded to the second: a target after it waits for the
        server's clock to pass into the next second."""
        self.execute("SELECT pg_sleep(1.02 - extract(epoch FROM clock_timestamp())::numeric % 1)")


def jarvis_for(account: Account | None, work: Path) -> list[str]:
    """The command line that runs jarvis-tui such that the commands it writes (pitr setup's
    archive_command, restore --pitr's restore_command, --start's server) name a jarvis-tui
    the server's account can run: the venv's, else (under root, the venv's interpreter
    lying under /root) WORK/bin/jarvis-tui, a script running the same code with the
    system's Python, found beside WORK/bin/python3, a link to the venv's interpreter."""
    if reachable_by(account, Path(sys.executable).resolve()):
        return [str(CLI)]
    if not SYSTEM_PYTHON.is_file():
        sys.exit(f"the server's account cannot run {sys.executable}, and no {SYSTEM_PYTHON}")
    packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    python_path = f"PYTHONPATH={ROOT}:{packages}"
    folder = work / "bin"
    folder.mkdir(mode=0o755)
    (folder / "python3").symlink_to(Path(sys.executable).resolve())
    script = folder / "jarvis-tui"
    script.write_text(
        f'#!/bin/sh\nexec env {python_path} {SYSTEM_PYTHON} -m jarvis_tui.launch "$@"\n'
    )
    script.chmod(0o755)
    return ["env", python_path, str(folder / "python3"), "-m", "jarvis_tui.launch"]


def jarvis_processes(env_file: Path) -> list[int]:
    """Processes of ours still running for this benchmark's settings (a WAL worker, say)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if str(env_file).encode() in words and int(cmdline.parent.name) != os.getpid():
            found.append(int(cmdline.parent.name))
    return found


def wait_for_our_workers(env_file: Path, timeout_s: float = 60) -> None:
    """Before a peer's turn: ours must not work beside it (a worker pushing ahead, say)."""
    deadline = time.monotonic() + timeout_s
    while (left := jarvis_processes(env_file)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        print(f"  note: {len(left)} of our processes still run beside the peer: {left}")


class RestoredCluster(Cluster):
    """A restored copy started by the benchmark: durable as its folder's settings say, as
    `restore --pitr --start` starts ours (the throwaway's fsync=off would favour it)."""

    def _argv(self, port: int) -> list[str]:
        argv = super()._argv(port)
        at = argv.index("fsync=off")
        return argv[: at - 1] + argv[at + 1 :]

    def _answers(self, port: int) -> bool:
        # Up, not answering: before its first connection a large copy syncs its folder and
        # replays to a consistent state, which may take longer than a start is given;
        # the caller waits for the promotion (wait_promoted).
        return (self.data_dir / "postmaster.pid").exists()


class StartedCopy:
    """The server `restore postgres --pitr --start` left running on FOLDER: asked on its
    port, stopped by the pid in its postmaster.pid."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname=dbname, autocommit=True) as conn:  # fmt: skip
            return conn.execute(sql).fetchall()

    def value(self, sql: str, dbname: str = "postgres"):
        return self.execute(sql, dbname)[0][0]

    def close(self) -> None:
        try:
            pid = int((self.folder / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGINT)  # fast shutdown
            deadline = time.monotonic() + 60
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie nobody reaps does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"
