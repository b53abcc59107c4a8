"""Hosts that back up to moto's S3 under a prefix each, for the fresh-host and browsing
tests: their settings, a few real backups copied there, what the catalog and the bucket
hold."""

import shutil
from pathlib import Path

from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_secrets_env, random_text

BUCKET = "jarvis-offsite"
PREFIX = "hosts/jarvis-1"


def s3_settings(
    s3_server, prefix: str = PREFIX, *, endpoint_url: str | None = None
) -> dict[str, str]:
    """The guide's settings for a copy to the server (or to a proxy at `endpoint_url`)."""
    return {
        "S3_ENABLED": "true",
        "S3_BUCKET": BUCKET,
        "S3_ENDPOINT_URL": endpoint_url or s3_server.endpoint_url,
        "S3_ACCESS_KEY": s3_server.access_key,
        "S3_SECRET_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
        "S3_PREFIX": prefix,
    }


def backed_up_host(root: Path, s3_server, prefix: str = PREFIX, token: str = "first") -> FilesEnv:
    """A host whose files and secrets were backed up (twice for files) and copied to S3."""
    env = make_secrets_env(root, token)
    for number in range(5):
        (env.data / f"f{number}.txt").write_bytes(random_text(20_000, number))
    env.set(**s3_settings(s3_server, prefix))
    for kind in ("files", "secrets"):
        assert env.cli("backup", kind) == ExitCode.OK
    (env.data / "new.txt").write_bytes(random_text(30_000, 9))
    assert env.cli("backup", "files") == ExitCode.OK
    return env


def catalog_contents(env: FilesEnv) -> tuple[dict, dict]:
    """(sets, artifacts) as the catalog records them, with nothing that a rebuild cannot
    know (job ids, verification times)."""
    with env.workspace() as workspace:
        catalog = workspace.catalog
        sets = {s.id: (s.kind, s.tier, s.status, s.created_at) for s in catalog.list_backup_sets()}
        artifacts = {
            a.relpath: (
                a.set_id, a.source, a.mode, a.status, a.checksum, a.stored_size,
                a.plain_size, a.key_id, a.codec,
            )
            for a in catalog.all_artifacts()
        }  # fmt: skip
    return sets, artifacts


def copy_states(env: FilesEnv) -> dict[str, dict[str, str]]:
    with env.workspace() as workspace:
        return {
            a.relpath: {c.destination: c.state for c in workspace.catalog.copies_of(a.id)}
            for a in workspace.catalog.all_artifacts()
        }


def wipe_host(env: FilesEnv) -> None:
    """A new host: no repository, no catalog; the settings and the key remain."""
    shutil.rmtree(env.repo)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{env.root / 'catalog.sqlite3'}{suffix}").unlink(missing_ok=True)


def s3_objects(s3_server, prefix: str = PREFIX) -> dict[str, bytes]:
    client = s3_server.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/")
    keys = [item["Key"] for page in pages for item in page.get("Contents", ())]
    return {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}
