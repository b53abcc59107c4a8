"""Restores read the best copy: the repository's, else S3's.

One full backup of every kind is copied to moto's S3 over HTTP on loopback; then the
repository loses its objects (as on a host whose disk was replaced and whose catalog
came back), and every restore, `verify`, `decrypt`, `export files` and the restore
drill read what they need straight from S3, each artifact authenticated as always. A
swapped or damaged object there is refused (exit 4) before anything is written; a
download whose connection drops mid-body resumes with a ranged GET; an object in an
archive storage class is explained in one line with the command that restores it.
The real CLI runs in its own process, against real PostgreSQL and Redis.
"""

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engines.destinations import LocalRepository
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import REPO_ROOT, child_env
from tests.support.pg_seed import PgCase
from tests.support.s3_hosts import BUCKET, PREFIX, s3_settings
from tests.support.s3_read_only import ReadOnlyS3Proxy

DOTENV = "API_TOKEN=sk-live-from-copy\nDB_PASSWORD=hunter2\n"


class World:
    """A repository with every source configured, copied to S3 as each backup ends."""

    def __init__(self, tmp_path: Path, pg: PgCase, redis_url: str, s3: dict[str, str]):
        self.tmp_path = tmp_path
        self.pg = pg
        self.data = tmp_path / "data"
        self.data.mkdir()
        for number in range(8):
            (self.data / f"track{number}.txt").write_bytes(bytes([65 + number]) * 90_000)
        (self.data / "notes.txt").write_text("la la la\n")
        self.dotenv = tmp_path / "app.env"
        self.dotenv.write_text(DOTENV)
        self.conf = tmp_path / "conf"
        self.conf.mkdir()
        (self.conf / "nginx.conf").write_text("server { listen 80; }\n")
        with pg.env_file.open("a") as env:
            env.write(
                "\n".join(
                    f"{name}={value}"
                    for name, value in {
                        "REDIS_URL": redis_url,
                        "BACKUP_FILE_PATHS": self.data,
                        "BACKUP_SECRET_FILES": self.dotenv,
                        "BACKUP_CONFIG_PATHS": self.conf,
                        **s3,
                    }.items()
                )
                + "\n"
            )

    @property
    def repository(self) -> LocalRepository:
        return LocalRepository(self.tmp_path / "repo")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "jarvis_tui.cli", "--env-file", str(self.pg.env_file)]
        return subprocess.run(
            [*argv, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
            env=child_env(),
        )  # fmt: skip

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        done = self.run(*args)
        assert done.returncode == ExitCode.OK, (args, done.stdout[-3000:], done.stderr)
        return done

    def backup(self, kind: str) -> str:
        self.ok("backup", kind)
        with self.pg.workspace() as workspace:
            return workspace.catalog.get_backup_set("latest", kind).id

    def relpaths(self, set_id: str) -> dict[str, str]:
        """{mode: relpath} of the set's artifacts."""
        with self.pg.workspace() as workspace:
            return {a.mode: a.relpath for a in workspace.catalog.artifacts_of(set_id)}

    def lose_local_objects(self) -> None:
        """Every stored object gone from the repository; its id and the catalog stay."""
        for item in list(self.repository.list()):
            self.repository.delete(item.key)
        assert list(self.repository.list()) == []


@pytest.fixture
def world(tmp_path, isolated_env, postgres_server, redis_server, s3_server):
    redis_server.flush()
    client = redis_server.client()
    client.config_set("repl-diskless-sync-delay", 0)
    client.set("greeting", "hello")
    client.rpush("queue", "a", "b")
    s3_server.create_bucket(BUCKET)
    case = PgCase(postgres_server, tmp_path)
    yield World(tmp_path, case, redis_server.url(), s3_settings(s3_server))
    case.cleanup()


def s3_key(relpath: str) -> str:
    return f"{PREFIX}/{relpath}"


def test_every_kind_restores_verifies_and_decrypts_from_s3_when_the_repository_lost_it(
    world, redis_server, s3_server
):
    set_id = world.backup("full")
    world.lose_local_objects()

    # PostgreSQL, into a database of its own: the same tables and rows as the source.
    target = "jarvis_from_s3"
    restored = world.run("restore", "postgres", set_id, "--target-db", target)
    assert restored.returncode == ExitCode.OK, restored.stderr
    assert world.pg.fingerprint(target) == world.pg.fingerprint()

    # Redis: the server flushed, then everything back.
    redis_server.client().flushall()
    world.ok("restore", "redis", set_id, "--flush")
    assert redis_server.client().get("greeting") == b"hello"
    assert redis_server.client().lrange("queue", 0, -1) == [b"a", b"b"]

    # Files: every chunk from the packs on S3.
    files_target = world.tmp_path / "files-back"
    world.ok("restore", "files", set_id, "--target-dir", str(files_target))
    restored_files = {
        p.name: p.read_bytes() for p in files_target.rglob("*") if p.is_file()
    }  # fmt: skip
    assert restored_files == {p.name: p.read_bytes() for p in world.data.iterdir()}

    # Secrets and config.
    out = world.tmp_path / "restored.env"
    world.ok("restore", "secrets", set_id, "--to", str(out))
    assert out.read_text() == DOTENV
    conf_target = world.tmp_path / "conf-back"
    conf_target.mkdir()
    world.ok("restore", "config", set_id, "--target-dir", str(conf_target))
    assert [p.read_text() for p in conf_target.rglob("nginx.conf")] == ["server { listen 80; }\n"]

    # verify (every chunk), decrypt, export of the snapshot, the restore drill.
    verified = world.ok("verify", set_id, "--read-data")
    assert "Traceback" not in verified.stderr
    decrypted = world.tmp_path / "decrypted"
    decrypted.mkdir()
    (secrets,) = [r for r in world.relpaths(set_id).values() if r.startswith("secrets/")]
    world.ok("decrypt", secrets, "-o", str(decrypted))
    (plain,) = decrypted.iterdir()
    assert plain.stat().st_size > 0
    tar = world.tmp_path / "export.tar"
    world.ok("export", "files", set_id, "--tar", str(tar))
    with tarfile.open(tar) as archive:
        assert {Path(m.name).name for m in archive.getmembers() if m.isfile()} == set(
            restored_files
        )
    world.ok("drill")

    # Nothing was written into the repository, and the log says where each came from.
    assert list(world.repository.list()) == []
    log = world.pg.job_log()
    for relpath in world.relpaths(set_id).values():
        assert f"reading {relpath} from s3" in log, relpath


def test_the_local_copy_is_read_when_it_is_there_and_a_truncated_one_is_passed_over(
    world, s3_server
):
    set_id = world.backup("secrets")
    (relpath,) = world.relpaths(set_id).values()
    out = world.tmp_path / "a.env"
    world.ok("restore", "secrets", set_id, "--to", str(out))
    assert f"reading {relpath} from local" in world.pg.job_log()

    # Cut short locally (the catalog recorded another size): S3's whole copy is read.
    local = world.repository.path_for(relpath)
    local.write_bytes(local.read_bytes()[:-10])
    out.unlink()
    world.ok("restore", "secrets", set_id, "--to", str(out))
    assert out.read_text() == DOTENV
    assert f"reading {relpath} from s3" in world.pg.job_log()


def test_a_local_copy_swapped_at_the_same_size_is_passed_over_for_the_copy_on_s3(world, s3_server):
    # Two artifacts of one size: a set made in the same second as another is named with
    # a suffix (-2), so of three backups two are named alike whatever the clock says.
    made = {}
    for _ in range(3):
        set_id = world.backup("secrets")
        (made[set_id],) = world.relpaths(set_id).values()
    sizes = {set_id: world.repository.path_for(key).stat().st_size for set_id, key in made.items()}
    ours, theirs = next((a, b) for a in made for b in made if a != b and sizes[a] == sizes[b])
    our_key, their_key = made[ours], made[theirs]
    local = world.repository.path_for(our_key)
    other = world.repository.path_for(their_key).read_bytes()
    assert len(other) == local.stat().st_size  # the size check alone cannot tell them apart
    local.write_bytes(other)

    out = world.tmp_path / "a.env"
    world.ok("restore", "secrets", ours, "--to", str(out))
    assert out.read_text() == DOTENV
    log = world.pg.job_log()
    assert "not the artifact asked for" in log and "reading the copy on s3 instead" in log

    # With no intact copy anywhere the refusal stands: nothing is written.
    s3_server.client().put_object(Bucket=BUCKET, Key=s3_key(our_key), Body=other)
    out.unlink()
    refused = world.run("restore", "secrets", ours, "--to", str(out))
    assert refused.returncode == ExitCode.INTEGRITY, refused.stderr
    assert "Traceback" not in refused.stderr and not out.exists()


def test_a_swapped_or_damaged_object_on_s3_is_refused_before_anything_is_written(world, s3_server):
    ours, theirs = world.backup("secrets"), world.backup("secrets")
    config = world.backup("config")
    world.lose_local_objects()
    client = s3_server.client()
    (our_key,) = world.relpaths(ours).values()
    (their_key,) = world.relpaths(theirs).values()

    # Another backup's genuine artifact under our name.
    genuine = client.get_object(Bucket=BUCKET, Key=s3_key(our_key))["Body"].read()
    other = client.get_object(Bucket=BUCKET, Key=s3_key(their_key))["Body"].read()
    client.put_object(Bucket=BUCKET, Key=s3_key(our_key), Body=other)
    out = world.tmp_path / "out.env"
    refused = world.run("restore", "secrets", ours, "--to", str(out))
    assert refused.returncode == ExitCode.INTEGRITY, refused.stderr
    assert "not the artifact asked for" in refused.stderr and their_key in refused.stderr
    assert "Traceback" not in refused.stderr and not out.exists()

    # A byte flipped in the sealed data: refused before the folder is touched.
    client.put_object(Bucket=BUCKET, Key=s3_key(our_key), Body=genuine)
    (config_key,) = world.relpaths(config).values()
    body = bytearray(client.get_object(Bucket=BUCKET, Key=s3_key(config_key))["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=BUCKET, Key=s3_key(config_key), Body=bytes(body))
    (world.conf / "nginx.conf").write_text("edited\n")
    refused = world.run("restore", "config", config, "--force")
    assert refused.returncode == ExitCode.INTEGRITY, refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert (world.conf / "nginx.conf").read_text() == "edited\n"
    assert not (world.conf / "nginx.conf.bak").exists()

    # The genuine one still restores.
    world.ok("restore", "secrets", ours, "--to", str(out))
    assert out.read_text() == DOTENV


def test_an_archived_object_is_explained_in_one_line_with_the_command_that_restores_it(
    world, s3_server
):
    set_id = world.backup("secrets")
    world.lose_local_objects()
    (relpath,) = world.relpaths(set_id).values()
    client = s3_server.client()
    client.copy_object(
        Bucket=BUCKET, Key=s3_key(relpath), StorageClass="DEEP_ARCHIVE",
        CopySource={"Bucket": BUCKET, "Key": s3_key(relpath)},
    )  # fmt: skip
    out = world.tmp_path / "out.env"
    done = world.run("restore", "secrets", set_id, "--to", str(out))
    assert done.returncode == ExitCode.FAILED, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "DEEP_ARCHIVE" in lines[0] and "aws s3api restore-object" in lines[0]
    assert f"--key {s3_key(relpath)}" in lines[0]
    assert not out.exists()


def test_a_download_cut_off_mid_body_resumes_with_a_ranged_get(
    tmp_path, isolated_env, postgres_server, redis_server, s3_server
):
    s3_server.create_bucket(BUCKET)
    proxy = ReadOnlyS3Proxy(s3_server.endpoint_url, cut_bodies=3).start()
    try:
        case = PgCase(postgres_server, tmp_path)
        world = World(
            tmp_path,
            case,
            redis_server.url(),
            s3_settings(s3_server, endpoint_url=proxy.endpoint_url),
        )
        set_id = world.backup("files")
        world.lose_local_objects()
        assert proxy.cuts_left == 3  # a backup's uploads are no ranged reads
        target = tmp_path / "back"
        world.ok("restore", "files", set_id, "--target-dir", str(target))
        assert proxy.cuts_left == 0  # three bodies were cut off half-way, and resumed
        restored = {p.name: p.read_bytes() for p in target.rglob("*") if p.is_file()}
        assert restored == {p.name: p.read_bytes() for p in world.data.iterdir()}
        case.cleanup()
    finally:
        proxy.close()


def test_with_s3_unreachable_what_the_repository_holds_still_restores(world, s3_server):
    set_id = world.backup("secrets")
    with world.pg.env_file.open("a") as env:
        env.write("S3_ENDPOINT_URL=http://127.0.0.1:9\n")  # nothing listens there
    out = world.tmp_path / "out.env"
    world.ok("restore", "secrets", set_id, "--to", str(out))
    assert out.read_text() == DOTENV

    # Lost here too: the one line says why the copy could not be read.
    world.lose_local_objects()
    out.unlink()
    done = world.run("restore", "secrets", set_id, "--to", str(out))
    assert done.returncode == ExitCode.FAILED, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"jarvis-tui: S3 bucket {BUCKET}: ") and "S3_ENDPOINT_URL" in line
    assert not out.exists()
