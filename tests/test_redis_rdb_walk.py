"""The RDB walk in C counts exactly what the Python walk counts, and fails where and how
it fails: on the seed data in Redis's compact and its big encodings, cut short at many
places, and with bytes changed."""

import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from engines.redis import rdb_format
from engines.redis.rdb_format import read_summary, walk_in_python
from tests.support.rdb_oracle import assert_same, in_c, in_python, read_sites
from tests.support.redis import RedisServer
from tests.support.redis_seed import BIG_ENCODINGS, rdb_snapshot, seed

ROOT = Path(__file__).resolve().parents[1]
NOW_MS = 4_000_000_000_000  # 2096: later than every expiry the tests set


@pytest.fixture(scope="module")
def rdbs(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("rdbs")
    found = {}
    with RedisServer() as server:
        seed(server)
        client = server.client()
        # Expired at NOW_MS below, yet never by the server's clock while the test runs.
        client.set("expired-at-now", "x", pxat=NOW_MS - 1)
        client.xadd("stream", {"more": "entries"}, id="9-0")
        found["compact"] = rdb_snapshot(server, folder / "compact.rdb")
        for name, value in BIG_ENCODINGS.items():
            client.config_set(name, value)
        seed(server)
        client.xadd("stream", {"more": "entries"}, id="9-0")
        found["big"] = rdb_snapshot(server, folder / "big.rdb")
    return found


def _cuts(data: bytes, *, emit: bool) -> list[int]:
    """At and a byte after each place the walk reads from (68 ways to run out of input in
    the compact file, which 400 cuts at even intervals reached 14 of), a few at even
    intervals, and the end."""
    sites = read_sites(data, emit=emit)
    spread = range(0, len(data), max(1, len(data) // 40))
    cuts = {*sites, *(at + 1 for at in sites), *spread, *range(len(data) - 12, len(data))}
    return sorted(cut for cut in cuts if cut < len(data))


def test_the_c_walker_is_built():
    assert rdb_format.rdb_walk is not None, (
        "engines/redis/_rdb_walk.c was not built: install with a C compiler and the Python "
        "headers (pip install -e .), or RDB backups count keys at Python speed"
    )


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_both_walkers_count_the_same(rdbs, encoding):
    data = rdbs[encoding]
    now_ms = NOW_MS
    walked = read_summary(io.BytesIO(data), now_ms=now_ms)
    assert walked == walk_in_python(io.BytesIO(data), now_ms=now_ms)
    assert walked.complete and walked.total_keys == 18 + (encoding == "compact")
    assert set(walked.keys_per_type) == {"string", "list", "set", "zset", "hash", "stream"}
    assert walked.redis_version and walked.expires >= 2
    assert read_summary(io.BytesIO(data)) == walk_in_python(io.BytesIO(data))


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_a_cut_anywhere_fails_the_same_way(rdbs, encoding):
    data = rdbs[encoding]
    for cut in _cuts(data, emit=False):
        counted = in_c(data[:cut], now_ms=None, emit=False)
        assert_same(counted, in_python(data[:cut], now_ms=None, emit=False), f"cut at {cut}")


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_a_changed_byte_fails_or_counts_the_same_way(rdbs, encoding):
    data = rdbs[encoding]
    rnd = random.Random(7)
    for _ in range(600):
        at = rnd.randrange(len(data))
        changed = bytearray(data)
        changed[at] = rnd.randrange(256)
        changed = bytes(changed)
        counted = in_c(changed, now_ms=0, emit=False)
        assert_same(counted, in_python(changed, now_ms=0, emit=False), f"byte {at} changed")


def test_what_read_raises_is_passed_on():
    class Failing(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 100:
                raise OSError("the pipe broke")
            return super().read(50 if size < 0 else min(size, 50))

    value = b"v" * 1000
    aux = b"\xfa\x01a" + bytes([0x40 | len(value) >> 8, len(value) & 0xFF]) + value
    with pytest.raises(OSError, match="the pipe broke"):
        read_summary(Failing(b"REDIS0010" + aux + b"\xff"))
    assert walk_in_python(io.BytesIO(b"REDIS0010" + aux + b"\xff")).aux == {"a": "v" * 1000}


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_both_walkers_emit_the_same_lines(rdbs, encoding):
    data = rdbs[encoding]
    c = in_c(data, now_ms=NOW_MS)
    assert c[0] == "ok", c
    assert_same(c, in_python(data, now_ms=NOW_MS), encoding)
    _, lines, summary = c
    assert len(lines.splitlines()) > summary.total_keys  # big keys take several lines
    assert summary.json_counts.total == summary.total_keys


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_a_cut_anywhere_fails_the_same_way_when_emitting(rdbs, encoding):
    data = rdbs[encoding]
    for cut in _cuts(data, emit=True):
        c = in_c(data[:cut], now_ms=NOW_MS)
        assert_same(c, in_python(data[:cut], now_ms=NOW_MS), f"cut at {cut}")
        # the 8-byte checksum after the EOF opcode is not read
        failed = c[0] == "error" and c[1].startswith("RdbFormatError")
        assert failed or cut >= len(data) - 8, (cut, c[:2])


_SCORES_UNDER_A_COMMA_LOCALE = """
import ctypes, io, sys
from engines.redis.rdb_format import read_summary
from tests.support.rdb_build import RdbWriter, binary_zset
ctypes.CDLL(None).setlocale(1, b"de_DE.ISO-8859-1")  # LC_NUMERIC: a decimal comma
rdb = RdbWriter(10).select(0).key(b"z", binary_zset([(b"a", 1.5), (b"b", 0.1)])).end()
blocks = []
read_summary(io.BytesIO(rdb), emit=blocks.append)
sys.stdout.buffer.write(b"".join(blocks))
"""


def test_scores_are_written_with_a_point_whatever_the_locale(tmp_path):
    """snprintf and strtod follow LC_NUMERIC; Python's float formatting does not."""
    locale = tmp_path / "de_DE.ISO-8859-1"  # a small character map: made in a fraction of
    # the time UTF-8's takes, with the same decimal comma
    subprocess.run(["localedef", "-i", "de_DE", "-f", "ISO-8859-1", str(locale)],
                   capture_output=True, check=False)  # fmt: skip
    if not locale.exists():
        pytest.skip("localedef cannot make de_DE.ISO-8859-1 here")
    done = subprocess.run([sys.executable, "-c", _SCORES_UNDER_A_COMMA_LOCALE],
                          env={**os.environ, "LOCPATH": str(tmp_path)}, cwd=ROOT,
                          capture_output=True, check=True)  # fmt: skip
    assert done.stdout == b'{"db":0,"key":"z","type":"zset","value":[["a","1.5"],["b","0.1"]]}\n'
