"""This host's copy under S3_PREFIX in moto's bucket, as the tests of prune, cleanup and
the S3 lock look at it: the destination, its listing, a download of the prefix, and a
loopback endpoint that refuses every connection (S3 unreachable)."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engines.actions.verbs import Request, run_verb
from engines.destinations.s3 import S3Destination
from tests.support.files_env import FilesEnv
from tests.support.s3_hosts import BUCKET, PREFIX


def s3_copy(s3_server, prefix: str = PREFIX) -> S3Destination:
    return S3Destination(
        BUCKET,
        prefix=prefix,
        endpoint_url=s3_server.endpoint_url,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        region=s3_server.region,
    )


def listing(destination) -> dict[str, int]:
    return {item.key: item.size for item in destination.list()}


def bucket_keys(s3_server) -> set[str]:
    """Every object under the prefix, the dot-files (lock, repository id) among them."""
    pages = s3_server.client().get_paginator("list_objects_v2")
    return {
        item["Key"].removeprefix(f"{PREFIX}/")
        for page in pages.paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/")
        for item in page.get("Contents", ())
    }


def download_prefix(s3_server, folder: Path) -> None:
    """What `aws s3 sync s3://bucket/prefix/ folder` does."""
    client = s3_server.client()
    for key in bucket_keys(s3_server):
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(BUCKET, f"{PREFIX}/{key}", str(path))


@contextmanager
def unreachable_endpoint() -> Iterator[str]:
    """A loopback port bound but not listening: every connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def delete_set(env: FilesEnv, set_id: str) -> None:
    """The `delete` verb, as the console's catalog pane runs it."""
    with env.workspace() as workspace:
        run_verb(workspace, "delete", Request(reference=set_id))
