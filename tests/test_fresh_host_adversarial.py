"""A fresh host against a bucket someone else may write: objects under names that are no
repository key (a backslash, control characters, a name too long for the disk), a forged
`.repository-id`, a sidecar that lies; `catalog rebuild --from s3` and `pull` in processes
of their own against moto's S3 over HTTP on loopback."""

import json
import math
import subprocess

import pytest

from engines.config import load_settings
from engines.destinations import LocalRepository
from engines.destinations.best_copy import ReadOnlyViewError
from engines.errors import ReadOnlyBrowseError
from engines.pipeline.artifacts import SIDECAR_SUFFIX
from engines.workspace import Workspace
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import KEY, FilesEnv, child_env, make_secrets_env
from tests.support.s3_faults import FaultyS3Proxy
from tests.support.s3_hosts import (
    BUCKET,
    PREFIX,
    backed_up_host,
    catalog_contents,
    copy_states,
    s3_objects,
    wipe_host,
)
from tests.test_key_secrets_manager import SECRET_ID, secrets_client

ESCAPE = "\x1b]0;pwned\x07"  # a terminal's title set by whoever names an object
HOSTILE = [
    "files/back\\slash",
    "files/back\\slash" + SIDECAR_SUFFIX,
    f"files/title{ESCAPE}.enc",
    f"files/title{ESCAPE}.enc" + SIDECAR_SUFFIX,
    f"sets/evil{ESCAPE}.json.enc",
    "sets/back\\slash.json.enc",
]


@pytest.fixture
def host(tmp_path, isolated_env, s3_server) -> FilesEnv:
    s3_server.create_bucket(BUCKET)
    return backed_up_host(tmp_path / "host", s3_server)


def put(s3_server, key: str, body: bytes) -> None:
    s3_server.client().put_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}", Body=body)


def local(env: FilesEnv) -> dict[str, bytes]:
    repository = LocalRepository(env.repo)
    return {item.key: repository.path_for(item.key).read_bytes() for item in repository.list()}


def lose_local_objects(env: FilesEnv) -> None:
    repository = LocalRepository(env.repo)
    for item in list(repository.list()):
        repository.delete(item.key)


def test_objects_named_like_no_repository_key_do_not_stop_a_rebuild_from_s3(host, s3_server):
    original = catalog_contents(host)
    for key in HOSTILE:
        put(s3_server, key, b"{}")
    wipe_host(host)

    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    assert "Traceback" not in rebuild.stderr and "\x1b" not in rebuild.stdout + rebuild.stderr
    assert catalog_contents(host) == original
    said = [line for line in rebuild.stderr.splitlines() if "not a repository key" in line]
    assert len(said) == len(HOSTILE), rebuild.stderr
    assert any(repr("files/back\\slash") in line for line in said)


def test_objects_named_like_no_repository_key_do_not_stop_a_pull(host, s3_server):
    before = local(host)
    for key in HOSTILE:
        put(s3_server, key, b"{}")
    too_long = "files/" + "n" * 300  # S3 takes it; no file system does
    put(s3_server, too_long, b"{}")
    lose_local_objects(host)

    pulled = host.cli_process("pull")
    assert "Traceback" not in pulled.stderr and "\x1b" not in pulled.stdout + pulled.stderr
    assert local(host) == before  # every object of ours, nothing else
    (failed,) = [line for line in pulled.stderr.splitlines() if line.startswith("error: ")]
    assert too_long in failed and "too long" in failed
    assert pulled.returncode == ExitCode.FAILED, pulled.stderr
    ignored = [line for line in pulled.stderr.splitlines() if "not a repository key" in line]
    assert len(ignored) == len(HOSTILE), pulled.stderr


def test_a_forged_repository_id_on_s3_is_not_adopted_by_a_fresh_host(host, s3_server):
    original = catalog_contents(host)
    real = s3_objects(s3_server)[f"{PREFIX}/.repository-id"]
    put(s3_server, ".repository-id", b"0" * 32 + b"\n")
    wipe_host(host)

    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.INTEGRITY, rebuild.stderr
    assert "Traceback" not in rebuild.stderr
    assert not (host.repo / ".repository-id").exists()  # nothing authenticated against it
    pulled = host.cli_process("pull")
    assert pulled.returncode == ExitCode.INTEGRITY, pulled.stderr
    assert not (host.repo / ".repository-id").exists()
    # Packs and index files seal no repository id: nothing else came.
    assert not [k for k in local(host) if not k.startswith(("files/packs/", "files/index/"))]

    put(s3_server, ".repository-id", real)  # the bucket put right: the host recovers
    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    assert catalog_contents(host) == original
    assert (host.repo / ".repository-id").read_bytes() == real
    pulled = host.cli_process("pull")
    assert pulled.returncode == ExitCode.OK, pulled.stderr


def test_a_sidecar_that_lies_is_not_pulled_beside_the_artifact_here(host, s3_server):
    before = local(host)
    (sidecar,) = [k for k in before if k.startswith("secrets/") and k.endswith(SIDECAR_SUFFIX)]
    lying = json.loads(before[sidecar]) | {"source": "postgres", "set_id": "files_elsewhere"}
    put(s3_server, sidecar, json.dumps(lying).encode())
    LocalRepository(host.repo).delete(sidecar)  # the artifact stays here

    pulled = host.cli_process("pull")
    assert pulled.returncode == ExitCode.INTEGRITY, pulled.stderr
    assert f"error: {sidecar} was not stored" in pulled.stderr
    assert sidecar not in local(host)

    put(s3_server, sidecar, before[sidecar])  # the true one comes
    pulled = host.cli_process("pull")
    assert pulled.returncode == ExitCode.OK, pulled.stderr
    assert local(host) == before


def archive(s3_server, key: str) -> None:
    """The object moved to an archive storage class, as a lifecycle rule does."""
    s3_server.client().copy_object(
        Bucket=BUCKET, Key=f"{PREFIX}/{key}", StorageClass="DEEP_ARCHIVE",
        CopySource={"Bucket": BUCKET, "Key": f"{PREFIX}/{key}"},
    )  # fmt: skip


def test_a_set_record_that_cannot_be_read_leaves_its_set_out_not_failed(host, s3_server):
    original = catalog_contents(host)
    with host.workspace() as workspace:
        set_id = workspace.catalog.get_backup_set("latest", "secrets").id
    record = s3_objects(s3_server)[f"{PREFIX}/sets/{set_id}.json.enc"]
    archive(s3_server, f"sets/{set_id}.json.enc")
    wipe_host(host)

    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    (line,) = [ln for ln in rebuild.stderr.splitlines() if f"sets/{set_id}" in ln]
    assert "cannot read it" in line and "DEEP_ARCHIVE" in line and "None" not in line
    sets = catalog_contents(host)[0]
    assert set_id not in sets  # not imported failed, which a later rebuild would keep
    assert sets == {k: v for k, v in original[0].items() if k != set_id}

    put(s3_server, f"sets/{set_id}.json.enc", record)  # restored from the archive
    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    assert catalog_contents(host) == original


def test_a_sidecar_that_cannot_be_read_is_not_called_forged(host, s3_server):
    original = catalog_contents(host)
    (sidecar,) = [k for k in local(host) if k.startswith("secrets/") and k.endswith(SIDECAR_SUFFIX)]
    archive(s3_server, sidecar)
    wipe_host(host)

    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    assert "forged" not in rebuild.stderr
    assert f"{sidecar.removesuffix(SIDECAR_SUFFIX)}: its sidecar cannot be read" in rebuild.stderr
    assert catalog_contents(host) == original


def test_verify_all_on_a_host_rebuilt_from_s3_reads_the_copies(host, s3_server):
    wipe_host(host)
    assert host.cli_process("catalog", "rebuild", "--from", "s3").returncode == ExitCode.OK

    verify = host.cli_process("verify", "--all", "--read-data")
    assert verify.returncode == ExitCode.OK, verify.stdout + verify.stderr
    assert "3 artifact(s) checked" in verify.stdout

    host.set(S3_ENDPOINT_URL="http://127.0.0.1:9")  # nothing listens: S3 unreachable
    verify = host.cli_process("verify", "--all")
    assert "missing" not in verify.stdout  # not said missing: S3 could not be asked
    failed = [ln for ln in verify.stdout.splitlines() if ln.startswith("        ")]
    assert len(failed) == 3 and all("S3_ENDPOINT_URL" in ln for ln in failed), verify.stdout
    assert verify.returncode != ExitCode.OK and "Traceback" not in verify.stderr


def test_a_secret_of_json_nested_past_any_parser_is_one_line(tmp_path, isolated_env, s3_server):
    # Garbage a Secrets Manager may hold: JSON nested deeper than Python's parser recurses.
    env = make_secrets_env(tmp_path / "host")
    env.settings.pop("BACKUP_ENCRYPTION_KEY")
    env.set(BACKUP_ENCRYPTION_KEY_SECRET_ID=SECRET_ID, AWS_REGION=s3_server.region)
    secrets_client(s3_server).create_secret(Name=SECRET_ID, SecretString='{"k":' * 5000 + KEY)
    aws = {
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
    }
    check = subprocess.run(
        [*env.cli_argv(), "config", "check"], capture_output=True, text=True, timeout=120,
        env={**child_env(), **aws},
    )  # fmt: skip
    assert check.returncode == ExitCode.KEY_MISSING, check.stderr
    (line,) = check.stderr.strip().splitlines()
    assert SECRET_ID in line and "JSON" in line
    assert KEY not in check.stdout + check.stderr


def test_pull_while_browsing_another_hosts_prefix_is_refused(host, s3_server, tmp_path):
    other = backed_up_host(tmp_path / "other", s3_server, prefix="hosts/web-2", token="web-2")
    bucket_before = s3_objects(s3_server, "hosts/web-2")
    for command in (("pull",), ("pull", "--latest"), ("pull", "--dry-run")):
        refused = host.cli_process("--browse", "s3:hosts/web-2", *command)
        assert refused.returncode == ExitCode.USAGE, (command, refused.stdout, refused.stderr)
        (line,) = refused.stderr.strip().splitlines()  # not "S3_ENABLED is off", exit 0
        assert f"refused while browsing s3://{BUCKET}/hosts/web-2 read-only" in line, command
    assert s3_objects(s3_server, "hosts/web-2") == bucket_before
    assert other.repo.is_dir()


def test_the_read_only_views_refuse_a_put_with_progress_as_any_write(host, s3_server, tmp_path):
    """The face's put takes a progress callback (copies pass one): refused, not a TypeError."""
    other = backed_up_host(tmp_path / "other", s3_server, prefix="hosts/web-2", token="web-2")
    bucket_before = s3_objects(s3_server, "hosts/web-2")
    payload = tmp_path / "payload"
    payload.write_bytes(b"not theirs")
    settings = load_settings(environ={"BACKUP_BROWSE": "s3:hosts/web-2"}, env_file=host.env_file)
    with Workspace.open(settings) as workspace, pytest.raises(ReadOnlyBrowseError):
        workspace.repository.put(payload, "secrets/x.enc", lambda done: None)
    with host.workspace() as workspace, pytest.raises(ReadOnlyViewError):
        workspace.reader().put(payload, "secrets/x.enc", lambda done: None)
    assert s3_objects(s3_server, "hosts/web-2") == bucket_before
    assert other.repo.is_dir()


def test_index_files_named_like_no_repository_key_do_not_stop_a_restore_from_s3(
    host, s3_server, tmp_path
):
    for key in ("files/index/back\\slash.idx", f"files/index/{ESCAPE}.idx"):
        put(s3_server, key, b"garbage")
    tree = {p.name: p.read_bytes() for p in host.data.iterdir()}
    wipe_host(host)
    assert host.cli_process("catalog", "rebuild", "--from", "s3").returncode == ExitCode.OK

    target = tmp_path / "back"
    target.mkdir()
    restore = host.cli_process("restore", "files", "latest", "--target-dir", str(target))
    assert restore.returncode == ExitCode.OK, restore.stderr
    assert {p.name: p.read_bytes() for p in target.rglob("*.txt")} == tree
    verify = host.cli_process("verify", "--all", "--read-data")
    assert verify.returncode == ExitCode.OK, verify.stdout + verify.stderr

    # The same prefix browsed read-only from another host.
    browser = make_secrets_env(tmp_path / "browser")
    browser.set(**{k: v for k, v in host.settings.items() if k.startswith(("S3_", "AWS_"))})
    browser.set(S3_PREFIX="hosts/browser")
    rebuild = browser.cli_process("catalog", "rebuild", "--from", "s3", "--prefix", PREFIX)
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    verify = browser.cli_process("--browse", f"s3:{PREFIX}", "verify", "--all", "--read-data")
    assert verify.returncode == ExitCode.OK, verify.stdout + verify.stderr


def test_s3_lifecycle_apply_while_browsing_is_refused(host, s3_server, tmp_path):
    backed_up_host(tmp_path / "other", s3_server, prefix="hosts/web-2", token="web-2")
    browse = ("--browse", "s3:hosts/web-2")
    refused = host.cli_process(*browse, "s3", "lifecycle", "--apply")
    assert refused.returncode == ExitCode.USAGE, refused.stdout + refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert f"refused while browsing s3://{BUCKET}/hosts/web-2 read-only" in line
    with pytest.raises(Exception, match="NoSuchLifecycleConfiguration"):
        s3_server.client().get_bucket_lifecycle_configuration(Bucket=BUCKET)
    printed = host.cli_process(*browse, "s3", "lifecycle")  # printing the rules is a read
    assert printed.returncode == ExitCode.OK, printed.stderr


@pytest.mark.parametrize("fault", ["denied", "some-fail"])
def test_no_credential_shows_when_the_server_echoes_them(host, s3_server, fault, tmp_path):
    """A server that echoes the credentials in its error bodies, during a fresh host's
    rebuild, pull, list, verify and health: nowhere in their output, logs or catalog."""
    secret, access = "Zq9-h8-secret-key-Vx7", "AKIAH8ACCESS77"
    host.set(S3_SECRET_KEY=secret, S3_ACCESS_KEY=access)
    wipe_host(host)
    said = ""
    with FaultyS3Proxy(s3_server.endpoint_url, echo=f"{secret} {access}") as proxy:
        host.set(S3_ENDPOINT_URL=proxy.endpoint_url)
        if fault == "denied":
            proxy.fail(math.inf, status=403, code="AccessDenied", methods=("GET", "HEAD"))
        else:  # drawn from the seed: the same requests fail in every run
            proxy.fail_fraction(0.5, seed=5, status=500, code="InternalError", methods=("GET",))
        for command in (
            ("catalog", "rebuild", "--from", "s3"), ("pull",), ("list",), ("verify", "--all"),
            ("health",),
        ):  # fmt: skip
            done = host.cli_process(*command)
            assert "Traceback" not in done.stderr, (command, done.stderr)
            said += done.stdout + done.stderr
        assert proxy.served  # the faults were served
    # Every file the processes wrote: catalog, job logs, the internal log under HOME.
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != host.env_file]
    said += "".join(p.read_bytes().decode("latin-1") for p in files)
    assert "****" in said  # the echoed values were there to leak, masked
    assert secret not in said and access not in said


def test_a_pull_after_objects_were_brought_by_hand_records_them_here(host, s3_server):
    """The guide's `aws s3 sync s3://... BACKUP_DIR` (or a pull killed between storing an
    artifact and saying so): pull finds nothing to download, and the catalog learns the
    artifacts are here."""
    before = local(host)
    wipe_host(host)
    assert host.cli_process("catalog", "rebuild", "--from", "s3").returncode == ExitCode.OK
    assert {s for states in copy_states(host).values() for s in states} == {"s3"}
    for key, body in before.items():  # what `aws s3 sync` would write
        path = host.repo / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    pulled = host.cli_process("pull")
    assert pulled.returncode == ExitCode.OK, pulled.stderr
    assert "nothing to download" in pulled.stdout
    assert all(states.get("local") == "stored" for states in copy_states(host).values())
    listing = host.cli_process("list")
    assert "s3 only" not in listing.stdout, listing.stdout
