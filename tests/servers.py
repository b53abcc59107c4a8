"""Throwaway real servers for the tests: PostgreSQL, Redis, S3 (moto), SMTP, webhooks.

Each server lives in its own temporary folder on a free loopback port and is
stopped on fixture teardown or, failing that, at interpreter exit. Nothing here
ever connects to a service the machine already runs: every readiness check
confirms it reached the process it started.
"""

import atexit
import contextlib
import ctypes
import email
import email.message
import email.policy
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PORT_ATTEMPTS = 3

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_live_servers: list["_Server"] = []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


class _Server:
    """Registered at creation so interpreter exit closes whatever a test left running."""

    def __init__(self) -> None:
        _live_servers.append(self)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            _live_servers.remove(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> Self:
        raise NotImplementedError


@atexit.register
def _close_all() -> None:
    for server in reversed(_live_servers[:]):
        with contextlib.suppress(Exception):
            server.close()


# --- processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """The unprivileged OS account a server runs as when the tests run as root."""

    name: str
    uid: int
    gid: int


def unprivileged_account(*preferred: str) -> Account | None:
    if os.geteuid() != 0:
        return None
    for name in (*preferred, "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return Account(name, entry.pw_uid, entry.pw_gid)
    raise RuntimeError(f"running as root but none of {(*preferred, 'nobody')} exists")


def chown_tree(path: Path, account: Account | None) -> None:
    if account is None:
        return
    os.lchown(path, account.uid, account.gid)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), account.uid, account.gid)


def _temporary_root(account: Account | None) -> Path:
    root = Path(tempfile.gettempdir())
    # The server account must be able to walk down to its folder.
    if account and not all(p.stat().st_mode & 0o001 for p in (root, *root.parents)):
        root = Path("/tmp")
    return root


def _remove_abandoned_folders(root: Path) -> None:
    """Delete folders of earlier test runs that died without cleaning up."""
    for folder in root.glob("jarvis-test-*-*-*"):
        try:
            owner_pid = int(folder.name.split("-")[3])
        except (IndexError, ValueError):
            continue
        if owner_pid != os.getpid() and not Path(f"/proc/{owner_pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def make_server_folder(kind: str, account: Account | None) -> Path:
    root = _temporary_root(account)
    _remove_abandoned_folders(root)
    folder = Path(tempfile.mkdtemp(prefix=f"jarvis-test-{kind}-{os.getpid()}-", dir=root))
    chown_tree(folder, account)
    return folder


def _die_with_parent() -> None:
    # Runs in the child after the uid switch (which would clear the setting).
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def _credentials(account: Account | None) -> dict[str, Any]:
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def child_environment(account: Account | None, home: Path) -> dict[str, str]:
    """The parent's environment without libpq settings that could redirect a server tool."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", TZ="UTC")
    if account is not None:
        env.update(HOME=str(home), USER=account.name, LOGNAME=account.name)
    return env


def _group_members_alive(pgid: int) -> bool:
    """True while any non-zombie process is in group `pgid` (PID 1 may never reap them)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat_file in proc.glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            return True
    return False


class _ProcessServer(_Server):
    """A server process in its own session, so its whole process group can be killed."""

    kind = "server"
    stop_signal = signal.SIGTERM
    host = LOOPBACK

    def __init__(self, account: Account | None) -> None:
        self.account = account
        self.base_dir = make_server_folder(self.kind, account)
        self.log_path = self.base_dir / f"{self.kind}.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        super().__init__()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    def _argv(self, port: int) -> list[str]:
        raise NotImplementedError

    def _answers(self, port: int) -> bool:
        """True once the process this object started accepts requests on `port`."""
        raise NotImplementedError

    def start(self) -> Self:
        if self.running:
            return self
        # A restart keeps its port so DSNs handed out earlier stay valid.
        for _ in range(1 if self.port else PORT_ATTEMPTS):
            port = self.port or free_port()
            if self._launch(port):
                self.port = port
                return self
        raise RuntimeError(f"{self.kind} found no free port in {PORT_ATTEMPTS} attempts")

    def _launch(self, port: int) -> bool:
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        in_main_thread = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self._argv(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                env=child_environment(self.account, self.base_dir),
                start_new_session=True,
                # The death signal follows the creating thread, so only tie it to the main one.
                preexec_fn=_die_with_parent if in_main_thread else None,
                **_credentials(self.account),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                output = self.read_log(log_offset)
                if "Address already in use" in output:
                    return False
                raise RuntimeError(f"{self.kind} exited with code {code}:\n{output}")
            if self._answers(port):
                return True
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"{self.kind} did not answer in {START_TIMEOUT:.0f}s: {self.log_path}")

    def read_log(self, offset: int = 0) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def stop(self) -> None:
        """Shut down cleanly; escalate to killing the process group after STOP_TIMEOUT."""
        if self._process is None:
            return
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(STOP_TIMEOUT)
        self._kill_group()

    def kill(self) -> None:
        """SIGKILL the server and everything it started, as a crash would."""
        if self._process is not None:
            self._kill_group()

    def _kill_group(self) -> None:
        assert self._process is not None
        pgid = self._process.pid
        # Signal before reaping the leader: until then the group id cannot be reused.
        if _group_members_alive(pgid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        self._process.wait()
        wait_until(lambda: not _group_members_alive(pgid), STOP_TIMEOUT, f"{self.kind} to exit")
        # Forget the pid: once the group is gone its number may belong to someone else.
        self._process = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            super().close()


# --- PostgreSQL ----------------------------------------------------------------------------


def _major_version(bin_dir: Path) -> int:
    name = bin_dir.parent.name
    return int(name) if name.isdigit() else -1


def find_postgres_bin_dir() -> Path:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(installed, key=_major_version, reverse=True)
    for bin_dir in candidates:
        if (bin_dir / "initdb").is_file() and (bin_dir / "postgres").is_file():
            return bin_dir
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) not found; install the `postgresql` "
        "package, or run ./scripts/test.sh which installs it when run as root"
    )


HBA_RULES = """\
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
local   replication  all                 trust
host    replication  all   127.0.0.1/32  trust
"""


class PostgresServer(_ProcessServer):
    """A private PostgreSQL cluster: trust auth on loopback, WAL archived for PITR tests.

    `data_source` starts from a copy of an existing data directory (a restored
    base backup, say) instead of a fresh `initdb`. Settings the harness needs
    are appended to postgresql.conf; `ALTER SYSTEM` still overrides them.
    """

    kind = "pg"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for clients
    user = "postgres"

    def __init__(
        self,
        *,
        bin_dir: Path | None = None,
        data_source: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.bin_dir = bin_dir or find_postgres_bin_dir()
        super().__init__(unprivileged_account("postgres"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.wal_archive_dir = self.base_dir / "wal-archive"
        for folder in (self.socket_dir, self.wal_archive_dir):
            folder.mkdir(mode=0o700)
            chown_tree(folder, self.account)
        if data_source is None:
            self._initdb()
        else:
            self._adopt(data_source)
        self._configure(settings or {})

    def binary(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                self.binary("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth=trust",
                "--no-sync",
            ],
            cwd=self.base_dir,
            env=child_environment(self.account, self.base_dir),
            capture_output=True,
            text=True,
            **_credentials(self.account),
        )
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{output}")

    def _adopt(self, source: Path) -> None:
        shutil.copytree(source, self.data_dir, symlinks=True)
        for leftover in ("postmaster.pid", "postmaster.opts"):
            (self.data_dir / leftover).unlink(missing_ok=True)
        chown_tree(self.data_dir, self.account)
        os.chmod(self.data_dir, 0o700)

    def _configure(self, extra: dict[str, str]) -> None:
        archive = self.wal_archive_dir
        settings = {
            "wal_level": "replica",
            "max_wal_senders": "4",
            "max_replication_slots": "4",
            "archive_mode": "on",
            "archive_command": f"'test ! -f {archive}/%f && cp %p {archive}/%f'",
            "shared_buffers": "32MB",
            "max_connections": "50",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            **extra,
        }
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(f"\n# jarvis test harness\n{lines}")
        (self.data_dir / "pg_hba.conf").write_text(HBA_RULES)

    def _argv(self, port: int) -> list[str]:
        return [
            self.binary("postgres"),
            "-D",
            str(self.data_dir),
            "-k",
            str(self.socket_dir),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            "fsync=off",
        ]

    def _answers(self, port: int) -> bool:
        import psycopg

        try:
            with psycopg.connect(self._dsn(port, "postgres"), connect_timeout=2) as conn:
                row = conn.execute("SHOW data_directory").fetchone()
        except psycopg.OperationalError:
            return False
        return row is not None and os.path.realpath(row[0]) == os.path.realpath(self.data_dir)

    def _dsn(self, port: int, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=self.host, port=port, user=self.user, dbname=dbname)

    def dsn(self, dbname: str = "postgres") -> str:
        return self._dsn(self.port, dbname)

    def url(self, dbname: str = "postgres") -> str:
        database = urllib.parse.quote(dbname, safe="")
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def env(self) -> dict[str, str]:
        """libpq variables for `pg_dump` and friends; merge into a copy of os.environ."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user}

    def execute(self, sql: Any, params: Any = None, dbname: str = "postgres") -> list[tuple]:
        """Run one statement in autocommit mode; the rows it returned, if any."""
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> None:
        from psycopg import sql

        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self.execute(statement.format(sql.Identifier(name)))

    def give_access(self, path: Path) -> None:
        """Hand `path` to the server's OS account (e.g. an archive folder for archive_command)."""
        chown_tree(path, self.account)


# --- Redis ---------------------------------------------------------------------------------


class RedisServer(_ProcessServer):
    kind = "redis"

    def __init__(self, *, password: str | None = None, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(found).is_file():
            raise RuntimeError("redis-server not found; install the `redis-server` package")
        self.binary = found
        self.password = password
        super().__init__(unprivileged_account("redis"))

    def _argv(self, port: int) -> list[str]:
        argv = [
            self.binary,
            "--port",
            str(port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(self.base_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def _answers(self, port: int) -> bool:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis(
            self.host, port, password=self.password, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        try:
            return client.info("server")["process_id"] == self.pid
        except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError):
            return False
        finally:
            client.close()

    def url(self, db: int = 0) -> str:
        auth = f":{urllib.parse.quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def client(self, db: int = 0, **options: Any):
        import redis

        return redis.Redis(self.host, self.port, db=db, password=self.password, **options)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()


# --- S3 ------------------------------------------------------------------------------------


class S3Server(_Server):
    """moto's S3 over real HTTP on loopback; `reset()` forgets every bucket."""

    host = LOOPBACK
    region = "us-east-1"
    access_key = "testing"
    secret_key = "testing"

    def __init__(self) -> None:
        self.port = 0
        self._server = None
        super().__init__()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        from moto.server import ThreadedMotoServer

        if self._server is None:
            # Port 0: the kernel picks a free port at bind time, so no race with other runs.
            self._server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._server.start()
            self.port = self._server.get_host_and_port()[1]
        return self

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def close(self) -> None:
        self.stop()
        super().close()


# --- SMTP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)


class SmtpServer(_Server):
    """aiosmtpd on loopback; with `auth=(user, password)` it requires AUTH (no TLS)."""

    host = LOOPBACK

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        self.auth = auth
        self.port = 0
        self.messages: list[ReceivedMail] = []
        self._arrived = threading.Condition()
        self._controller = None
        super().__init__()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        with self._arrived:
            self.messages.append(mail)
            self._arrived.notify_all()
        return "250 OK"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
        from aiosmtpd.smtp import AuthResult

        expected = tuple(part.encode() for part in self.auth or ())
        # handled=False: aiosmtpd then sends the 535 itself instead of leaving the client hanging.
        return AuthResult(success=(data.login, data.password) == expected, handled=False)

    def start(self) -> Self:
        from aiosmtpd.controller import Controller

        if self._controller is not None:
            return self
        auth_options: dict[str, Any] = {}
        if self.auth:
            auth_options = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        for attempt in range(PORT_ATTEMPTS):
            port = free_port()
            controller = Controller(self, hostname=self.host, port=port, **auth_options)
            try:
                controller.start()
            except Exception:
                if attempt == PORT_ATTEMPTS - 1:
                    raise
                continue
            self._controller, self.port = controller, port
            return self
        raise AssertionError("unreachable")

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"expected {count} messages, got {len(self.messages)}")
            return list(self.messages)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def close(self) -> None:
        self.stop()
        super().close()


# --- webhooks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True))


DEFAULT_ANSWER = (200, b'{"ok": true, "status": 1}', 0.0)


class WebhookReceiver(_Server):
    """Records every request; `respond_with` makes it fail (or stall) on purpose. A body
    containing `{path}` echoes the request's path back, as careless servers do."""

    host = LOOPBACK

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[ReceivedRequest] = []
        self._arrived = threading.Condition()
        self._answer = DEFAULT_ANSWER
        self._answer_times: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        super().__init__()

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def respond_with(
        self, status: int, body: bytes = b"", *, times: int | None = None, delay: float = 0.0
    ) -> None:
        """Answer the next `times` requests (all, when None) with `status` after `delay` s."""
        with self._arrived:
            self._answer = (status, body, delay)
            self._answer_times = times

    def _record(self, request: ReceivedRequest) -> tuple[int, bytes, float]:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
            answer = self._answer
            if self._answer_times is not None:
                self._answer_times -= 1
                if self._answer_times <= 0:
                    self._answer, self._answer_times = DEFAULT_ANSWER, None
            return answer

    def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedRequest]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)

    def start(self) -> Self:
        if self._server is not None:
            return self
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, answer, delay = receiver._record(
                    ReceivedRequest(self.command, self.path, headers, body)
                )
                time.sleep(delay)
                answer = answer.replace(b"{path}", self.path.encode())
                # A client that gave up during `delay` is what a stall test wants, not an error.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.stop()
        super().close()
