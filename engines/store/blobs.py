"""Compressing one chunk for a pack: the configured codec, or stored when it would not shrink.

A compressed chunk is one codec byte and the payload. Incompressible data (a
quick level-1 probe of a few samples says so) is stored as it is: deflating
random bytes at level 9 costs a lot and saves nothing. DEFLATE is zlib-ng's,
which at level 9 takes about half the time of zlib's for the same size; its
output is standard raw DEFLATE that any zlib inflates.
"""

import threading
import zlib

import zstandard
from zlib_ng import zlib_ng

from engines.errors import IntegrityError

STORED, DEFLATE, ZSTD = 0, 1, 2
CODEC_BYTES = {"gzip": DEFLATE, "zstd": ZSTD}
PROBE_SAMPLE = 2048
PROBE_RATIO = 0.9
_RAW_DEFLATE = -15
_local = threading.local()


def _looks_compressible(data: bytes | memoryview) -> bool:
    size = len(data)
    if size <= 4 * PROBE_SAMPLE:
        return True
    view = memoryview(data)
    middle = size // 2
    for start in (0, middle, size - PROBE_SAMPLE):
        sample = view[start : start + PROBE_SAMPLE]
        probe = zlib.compressobj(1, zlib.DEFLATED, -10, 4)
        if len(probe.compress(sample)) + len(probe.flush()) < PROBE_SAMPLE * PROBE_RATIO:
            return True
    return False


def _zstd_compressor(level: int) -> zstandard.ZstdCompressor:
    # ZstdCompressor objects are not thread-safe: one per thread and level.
    cache = getattr(_local, "zstd", None)
    if cache is None:
        cache = _local.zstd = {}
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level)
    return cache[level]


def compress_chunk(data: bytes | memoryview, codec: str, level: int) -> bytes:
    """`data` as codec byte + payload."""
    if _looks_compressible(data):
        if codec == "zstd":
            packed = _zstd_compressor(level).compress(data)
        else:
            deflate = zlib_ng.compressobj(level, zlib_ng.DEFLATED, _RAW_DEFLATE)
            packed = deflate.compress(data) + deflate.flush()
        if len(packed) < len(data):
            return bytes([CODEC_BYTES[codec]]) + packed
    return bytes([STORED]) + bytes(data)


def _inflate_at_most(payload: memoryview, limit: int) -> bytes:
    # No flush(): it would inflate the whole remaining input, whatever its size.
    inflate = zlib_ng.decompressobj(_RAW_DEFLATE)
    return inflate.decompress(payload, limit)


def decompress_chunk(blob: bytes, raw_length: int, name: str) -> bytes:
    """The chunk held by `blob`; IntegrityError naming `name` when it does not decode.

    At most one byte more than `raw_length` is ever produced: a blob that inflates
    past its declared size is damage, and must not cost memory in proportion to it.
    """
    if not blob:
        raise IntegrityError(f"{name}: empty chunk record")
    codec, payload = blob[0], memoryview(blob)[1:]
    try:
        if codec == STORED:
            data = bytes(payload)
        elif codec == DEFLATE:
            data = _inflate_at_most(payload, raw_length + 1)
        elif codec == ZSTD:
            with zstandard.ZstdDecompressor().stream_reader(payload) as reader:
                data = reader.read(raw_length + 1)
        else:
            raise IntegrityError(f"{name}: unknown chunk codec {codec}")
    except (zlib.error, zlib_ng.error, zstandard.ZstdError) as exc:
        raise IntegrityError(f"{name}: chunk does not decompress ({exc})") from None
    if len(data) != raw_length:
        raise IntegrityError(f"{name}: chunk is {len(data)} bytes, the index says {raw_length}")
    return data
