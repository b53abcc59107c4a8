"""The chunker: keyed Gear hashing as FastCDC defines it, with normalised chunking.

Properties, each derandomised: the fingerprint is `fp = (fp << 1) + gear[byte]`
(64 bits) at every position; cuts are content-defined (an insertion moves only the
boundaries near it), order-sensitive (reordering bytes of the window moves the cut,
which a sum over the window would not), keyed, and within the size bounds.
"""

import random

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engines.pipeline.crypto import MasterKey
from engines.store.chunker import MAX_SIZE, MIN_SIZE, WINDOW, Chunker
from engines.store.keys import store_keys
from tests.support.files_env import KEY, OTHER_KEY

CHUNKER = Chunker(store_keys(MasterKey.from_hex(KEY)).gear_seed)
OTHER_CHUNKER = Chunker(store_keys(MasterKey.from_hex(OTHER_KEY)).gear_seed)
GEAR = [int(value) for value in CHUNKER._gear]


def _bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _cuts(chunker: Chunker, data: bytes) -> list[int]:
    return chunker.cut_points(bytearray(data), final=True)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.binary(min_size=WINDOW, max_size=2000), st.data())
def test_the_fingerprint_is_the_gear_hash_at_every_position(data, draw):
    low = draw.draw(st.integers(WINDOW - 1, len(data) - 1))
    high = draw.draw(st.integers(low + 1, len(data)))
    expected, fingerprint = [], 0
    for byte in data:
        fingerprint = ((fingerprint << 1) + GEAR[byte]) & (2**64 - 1)
        expected.append(fingerprint)
    assert [int(fp) for fp in CHUNKER.fingerprints(data, low, high)] == expected[low:high]


@settings(max_examples=6, derandomize=True, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(MIN_SIZE, 5 * 1024 * 1024),
    st.binary(min_size=1, max_size=5000),
)
def test_an_insertion_moves_only_the_boundaries_near_it(seed, position, inserted):
    data = _bytes(seed, 6 * 1024 * 1024)
    edited = data[:position] + inserted + data[position:]
    before, after = _cuts(CHUNKER, data), _cuts(CHUNKER, edited)
    # Cuts up to the insertion depend on nothing after it.
    assert [c for c in after if c <= position] == [c for c in before if c <= position]
    # After it the same content is cut at the same places, shifted, within a chunk or two.
    shifted = {c + len(inserted) for c in before if c > position}
    later = [c for c in after if c > position]
    assert len(set(later) - shifted) <= 2 and later[-1] == len(edited)
    old_chunks = {data[a:b] for a, b in zip([0, *before[:-1]], before, strict=True)}
    new_chunks = [edited[a:b] for a, b in zip([0, *after[:-1]], after, strict=True)]
    assert sum(1 for chunk in new_chunks if chunk not in old_chunks) <= 3


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    st.integers(0, 2**32),
    st.lists(st.integers(1, 32), min_size=2, max_size=2, unique=True),
)
def test_reordering_bytes_of_the_window_moves_the_cut(seed, distances):
    data = bytearray(_bytes(seed, 3 * 1024 * 1024))
    cut = _cuts(CHUNKER, bytes(data))[0]
    # A content-defined cut: neither the size limit nor the end of the data (3 MiB may hold none).
    assume(cut < min(MAX_SIZE, len(data)))
    first, second = (cut - distance for distance in distances)
    assume(data[first] != data[second])
    window_before = sorted(data[cut - WINDOW : cut])
    data[first], data[second] = data[second], data[first]
    assert sorted(data[cut - WINDOW : cut]) == window_before  # the same bytes, reordered
    assert _cuts(CHUNKER, bytes(data))[0] != cut


@settings(max_examples=8, derandomize=True, deadline=None)
@given(st.integers(0, 2**32))
def test_boundaries_depend_on_the_key(seed):
    data = _bytes(seed, 4 * 1024 * 1024)
    assert _cuts(CHUNKER, data) != _cuts(OTHER_CHUNKER, data)


@settings(max_examples=10, derandomize=True, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(1, 20 * 1024 * 1024),
    st.sampled_from(["random", "zeros", "text"]),
    st.integers(64 * 1024, 6 * 1024 * 1024),
)
def test_chunks_stay_within_bounds_whatever_the_reads(seed, size, kind, read_size):
    if kind == "random":
        data = _bytes(seed, size)
    elif kind == "zeros":
        data = bytes(size)
    else:
        data = ((b"the quick brown fox %d jumps\n" % seed) * (size // 20 + 1))[:size]
    stream = iter([data[i : i + read_size] for i in range(0, len(data), read_size)])
    sizes = [len(chunk) for chunk in CHUNKER.chunks(lambda _size: next(stream, b""))]
    assert sum(sizes) == len(data)
    assert all(MIN_SIZE < size <= MAX_SIZE for size in sizes[:-1])
    assert 0 < sizes[-1] <= MAX_SIZE
    whole = iter([data])
    assert sizes == [len(chunk) for chunk in CHUNKER.chunks(lambda _size: next(whole, b""))]
