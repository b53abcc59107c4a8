"""Benchmark S3 copies against `aws s3 cp`, side by side in one run, on one S3 server.

    .venv/bin/python benchmarks/s3.py                      # 1 GiB, 10,000 objects
    .venv/bin/python benchmarks/s3.py --size-mib 256 --objects 2000 --rounds 1

moto's S3 server runs in a process of its own on loopback (as tests/support/s3.py
starts it, but out of this process, so no contender shares its interpreter); awscli
comes from PyPI into a venv of its own under benchmarks/.work/ (it pins its botocore).
Contenders (each its own process; wall time, peak RSS):
  aws s3 cp up       the 1 GiB artifact to s3://bench/peer/...
  ours sync up       jarvis-tui sync of a repository holding that artifact (not on S3 yet):
                     both listings, the upload, its SHA-256 confirmation, the copy state
  aws s3 cp down     the object back to a file
  ours get down      S3Destination.get of our object to a file (what `pull` does)
  ours stream down   reading our object through open_read (what a restore from S3 does)
  ours sync 10,000   jarvis-tui sync of an unchanged repository of 10,000 objects
  aws s3 sync 10,000 aws s3 sync of the same folder to the same objects (for comparison)
Each series runs an uncounted warm-up, then ROUNDS rounds in rotating order; the fastest
counts. The artifact is random bytes, as an encrypted artifact is.
"""

import argparse
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "s3"
AWSCLI_VENV = ROOT / "benchmarks" / ".work" / "awscli"
CLI = ROOT / ".venv" / "bin" / "jarvis-tui"
PYTHON = ROOT / ".venv" / "bin" / "python"
KEY = "0123456789abcdef" * 4
BUCKET = "bench"
ARTIFACT_KEY = "postgres/bench_full.dump.gz.enc"
ACCESS_KEY = SECRET_KEY = "testing"
REGION = "us-east-1"
# Keep this folder off the path: this file is called s3.py.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks.rounds import Contender, Result, in_rounds  # noqa: E402

TARGETS = (
    ("ours sync up / aws s3 cp up", "ours sync up", "aws s3 cp up", 1.0),
    ("ours get down / aws s3 cp down", "ours get down", "aws s3 cp down", 1.0),
)
SYNC_LIMIT_S = 2.0
OURS_READ = """
import sys
from pathlib import Path
from engines.config import load_settings
from engines.destinations.s3 import S3Destination
destination = S3Destination.from_settings(load_settings(env_file=Path(sys.argv[1])))
if sys.argv[2] == "get":
    destination.get(sys.argv[3], Path(sys.argv[4]))
else:
    with destination.open_read(sys.argv[3]) as source:
        while source.read(1 << 20):
            pass
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    moto = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2):
                return moto
        except OSError:
            time.sleep(0.2)
    moto.kill()
    sys.exit("moto_server did not start in 60 s")


def awscli() -> Path:
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        print("installing awscli into a venv of its own ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI_VENV)], check=True)
        pip = [str(AWSCLI_VENV / "bin" / "pip"), "install", "-q", "awscli"]
        subprocess.run(pip, check=True)
    return aws


def make_artifact(path: Path, size_mib: int) -> None:
    if path.exists() and path.stat().st_size == size_mib << 20:
        return
    print(f"writing {size_mib} MiB of random bytes ...", flush=True)
    with open(path, "wb") as output:
        for _ in range(size_mib):
            output.write(os.urandom(1 << 20))


def make_many(folder: Path, count: int) -> None:
    """`count` small objects in the files store's layout (packs of 1-4 KiB)."""
    packs = folder / "files" / "packs"
    if packs.exists() and sum(1 for _ in packs.rglob("*") if _.is_file()) == count:
        return
    shutil.rmtree(packs, ignore_errors=True)
    for number in range(count):
        name = f"{number:064x}"
        path = packs / name[-2:] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1024 + number % 3072))


def raw_listing_seconds(port: int, prefix: str) -> float:
    """The server's own time to list `prefix` page by page, over raw HTTP with no client
    library and no parsing beyond the continuation token: the floor of any sync."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    token, started = None, time.perf_counter()
    while True:
        query = f"list-type=2&prefix={prefix}"
        if token:
            query += f"&continuation-token={urllib.parse.quote(token)}"
        connection.request("GET", f"/{BUCKET}?{query}")
        page = connection.getresponse().read()
        found = re.search(rb"<NextContinuationToken>(.*?)</NextContinuationToken>", page)
        if not found:
            break
        token = found.group(1).decode()
    connection.close()
    return time.perf_counter() - started


def env_file(name: str, backup_dir: Path, endpoint: str, prefix: str) -> Path:
    path = WORK / f"{name}.env"
    path.write_text(
        f"BACKUP_DIR={backup_dir}\nBACKUP_CATALOG_PATH={WORK / name}.sqlite3\n"
        f"BACKUP_LOG_DIR={WORK / 'logs'}\nBACKUP_ENCRYPTION_KEY={KEY}\n"
        f"S3_ENABLED=true\nS3_BUCKET={BUCKET}\nS3_ENDPOINT_URL={endpoint}\n"
        f"S3_ACCESS_KEY={ACCESS_KEY}\nS3_SECRET_KEY={SECRET_KEY}\nAWS_REGION={REGION}\n"
        f"S3_PREFIX={prefix}\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated: up,down,stream,sync")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    WORK.mkdir(parents=True, exist_ok=True)
    aws = awscli()
    artifact = WORK / f"artifact-{args.size_mib}mib.bin"
    make_artifact(artifact, args.size_mib)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = start_moto(port)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "XDG_CACHE_HOME": str(WORK / "cache"),
    }
    aws_argv = [str(aws), "--endpoint-url", endpoint]
    results: dict[str, Result] = {}
    floor = None
    try:
        import boto3

        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip
        client.create_bucket(Bucket=BUCKET)
        repository = WORK / "repository"
        shutil.rmtree(repository, ignore_errors=True)
        ours_env = env_file("ours", repository, endpoint, "ours/")
        subprocess.run([str(CLI), "--env-file", str(ours_env), "init"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        stored = repository / ARTIFACT_KEY
        stored.parent.mkdir(parents=True, exist_ok=True)
        os.link(artifact, stored)
        peer_url = f"s3://{BUCKET}/peer/{ARTIFACT_KEY}"
        ours_key = f"ours/{ARTIFACT_KEY}"

        def forget(key: str):
            return lambda: client.delete_object(Bucket=BUCKET, Key=key)

        sync_argv = [str(CLI), "--env-file", str(ours_env), "sync"]
        if "up" not in skip:
            uploads = [
                Contender("aws s3 cp up", [*aws_argv, "s3", "cp", "--quiet", str(artifact),
                          peer_url], env, before=forget(f"peer/{ARTIFACT_KEY}")),
                Contender("ours sync up", sync_argv, env, before=forget(ours_key)),
            ]  # fmt: skip
            results.update(in_rounds(uploads, args.rounds, WORK))
        else:
            subprocess.run([*aws_argv, "s3", "cp", "--quiet", str(artifact), peer_url], env=env,
                           check=True)  # fmt: skip
        subprocess.run(sync_argv, env=env, check=True, stdout=subprocess.DEVNULL)
        check = client.head_object(Bucket=BUCKET, Key=ours_key)
        assert check["ContentLength"] == artifact.stat().st_size, "our upload is not there"

        down = WORK / "down.bin"

        def remove_download() -> None:
            down.unlink(missing_ok=True)

        if "down" not in skip:
            downloads = [
                Contender("aws s3 cp down", [*aws_argv, "s3", "cp", "--quiet", peer_url,
                          str(down)], env, before=remove_download),
                Contender("ours get down", [str(PYTHON), "-c", OURS_READ, str(ours_env), "get",
                          ARTIFACT_KEY, str(down)], env, before=remove_download),
            ]  # fmt: skip
            results.update(in_rounds(downloads, args.rounds, WORK))
            same = subprocess.run(["cmp", str(artifact), str(down)], check=False).returncode == 0
            assert same, "the last download differs from the artifact"
            remove_download()
        if "stream" not in skip:
            stream = Contender("ours stream down", [str(PYTHON), "-c", OURS_READ, str(ours_env),
                               "stream", ARTIFACT_KEY], env)  # fmt: skip
            results.update(in_rounds([stream], 1, WORK))

        if "sync" not in skip:
            many = WORK / "many"
            make_many(many, args.objects)
            shutil.rmtree(many / "catalog", ignore_errors=True)
            many_env = env_file("many", many, endpoint, "many/")
            subprocess.run([str(CLI), "--env-file", str(many_env), "init"], env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            print(f"seeding the bucket with {args.objects} objects ...", flush=True)
            aws_sync = [*aws_argv, "s3", "sync", "--quiet", "--size-only", str(many),
                        f"s3://{BUCKET}/many/", "--exclude", ".*"]  # fmt: skip
            subprocess.run(aws_sync, env=env, check=True)
            many_sync = [str(CLI), "--env-file", str(many_env), "sync"]
            output = subprocess.run(many_sync, env=env, check=True, capture_output=True).stdout
            print("  " + output.decode().strip().replace("\n", "\n  "))
            syncs = [
                Contender(f"ours sync {args.objects:,}", many_sync, env),
                Contender(f"aws s3 sync {args.objects:,}", aws_sync, env),
            ]
            results.update(in_rounds(syncs, args.rounds, WORK))
            floor = min(raw_listing_seconds(port, "many/") for _ in range(3))
    finally:
        moto.terminate()
        moto.wait(timeout=30)
    print(f"\n{args.size_mib} MiB artifact, {args.objects} objects, moto on loopback")
    print(f"{'contender':<22} {'seconds':>9} {'MiB/s':>8} {'peak RSS MB':>12}")
    for result in results.values():
        moved = result.name.endswith((" up", " down"))
        rate_text = f"{args.size_mib / result.seconds:8.1f}" if moved else f"{'':>8}"
        print(f"{result.name:<22} {result.seconds:>9.2f} {rate_text} "
              f"{result.peak_rss_mb:>12.0f}")  # fmt: skip
    print()
    for label, numerator, denominator, limit in TARGETS:
        if numerator in results and denominator in results:
            ratio = results[numerator].seconds / results[denominator].seconds
            verdict = "ok" if ratio <= limit else "OVER"
            print(f"{label:<34} {ratio:5.2f}x (target <= {limit}x) {verdict}")
    unchanged = results.get(f"ours sync {args.objects:,}")
    if unchanged is not None:
        verdict = "ok" if unchanged.seconds <= SYNC_LIMIT_S else "OVER"
        print(f"{'unchanged sync of ' + format(args.objects, ','):<34} {unchanged.seconds:5.2f} s "
              f"(target <= {SYNC_LIMIT_S} s) {verdict}")  # fmt: skip
    if floor is not None:
        print(f"{'the server alone lists them in':<34} {floor:5.2f} s (raw HTTP, best of 3)")


if __name__ == "__main__":
    main()
