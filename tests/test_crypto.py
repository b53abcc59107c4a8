"""The key types and the streaming AES-256-GCM container."""

import io
import itertools
import pickle
import re
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engines.errors import IntegrityError, KeyNotAvailableError
from engines.pipeline.crypto import (
    CHUNK_ID_KEY_V2,
    CONTAINER_KEY_V2,
    GEAR_TABLE_V2,
    HEADER_SIZE,
    PACK_KEY_V2,
    TAG_SIZE,
    ContainerReader,
    ContainerWriter,
    DecryptedStream,
    Keyring,
    MasterKey,
    generate_key_hex,
    read_header,
)

KEY_HEX = "00112233445566778899aabbccddeeff" * 2
KEY = MasterKey.from_hex(KEY_HEX)
OTHER = MasterKey.from_hex(generate_key_hex())
FRAME = 5  # record kind byte + plaintext length
KEY_ID_BYTES = range(10, 18)  # where the key id sits in the header
IDENTITY = {"repository": "r1", "source": "postgres", "set_id": "s1", "name": "postgres/x.enc"}


def seal(
    data: bytes,
    chunk_size: int,
    metadata: bytes = b"{}",
    key: MasterKey = KEY,
    identity: dict | None = None,
    version: int = 2,
) -> bytes:
    sink = io.BytesIO()
    writer = ContainerWriter(
        sink, key, codec_id=1, chunk_size=chunk_size, identity=identity, version=version
    )
    writer.write(data)
    writer.finish(metadata)
    return sink.getvalue()


def open_all(blob: bytes, keyring: Keyring | None = None, **expected) -> tuple[bytes, bytes, int]:
    reader = ContainerReader(
        io.BytesIO(blob), keyring or Keyring(KEY), "postgres/x.dump.gz.enc", **expected
    )
    data = DecryptedStream(reader).read()
    assert reader.metadata is not None
    return data, reader.metadata, reader.chunk_count


def header_size(blob: bytes) -> int:
    return len(read_header(io.BytesIO(blob), "x")[1])


def records(blob: bytes, chunk_size: int, data_size: int) -> list[tuple[int, int]]:
    """(offset, length) of each record in a container written by `seal`."""
    # The writer holds one chunk back, so the last data chunk is never empty
    # unless the data is.
    full = (data_size - 1) // chunk_size if data_size else 0
    sizes = [chunk_size] * full + [data_size - full * chunk_size]
    spans, offset = [], header_size(blob)
    for size in sizes:
        spans.append((offset, FRAME + size + TAG_SIZE))
        offset += FRAME + size + TAG_SIZE
    spans.append((offset, len(blob) - offset))  # the metadata record
    return spans


def test_master_key_from_hex_rejects_wrong_length_without_echoing_it():
    with pytest.raises(ValueError, match=r"^expected 64 hex characters, got 12$") as caught:
        MasterKey.from_hex("abcdef123456")
    assert "abcdef" not in str(caught.value)


def test_master_key_from_hex_rejects_non_hex_without_echoing_it():
    secretish = "g" + KEY_HEX[1:]
    with pytest.raises(ValueError, match="expected 64 hex characters") as caught:
        MasterKey.from_hex(secretish)
    assert KEY_HEX[1:20] not in str(caught.value)


def test_master_key_repr_and_str_show_only_the_key_id():
    shown = repr(KEY) + str(KEY) + repr(Keyring(KEY, (OTHER,)))
    assert KEY_HEX not in shown and KEY_HEX[:16] not in shown
    assert KEY.key_id in shown


def test_master_key_cannot_be_pickled():
    with pytest.raises(TypeError):
        pickle.dumps(KEY)


def test_key_id_is_a_short_one_way_id():
    assert re.fullmatch(r"[0-9a-f]{16}", KEY.key_id)
    assert KEY.key_id == MasterKey.from_hex(KEY_HEX.upper()).key_id
    assert KEY.key_id not in KEY_HEX
    assert KEY.key_id != OTHER.key_id


def test_generate_key_hex_gives_distinct_usable_keys():
    first, second = generate_key_hex(), generate_key_hex()
    assert re.fullmatch(r"[0-9a-f]{64}", first) and first != second
    assert MasterKey.from_hex(first) != MasterKey.from_hex(second)


def test_keyring_finds_current_and_previous_keys():
    keyring = Keyring(OTHER, (KEY,))
    assert keyring.find(KEY.key_id) is KEY
    assert keyring.find(OTHER.key_id) is OTHER
    with pytest.raises(KeyNotAvailableError) as caught:
        keyring.find("0123456789abcdef")
    assert caught.value.key_id == "0123456789abcdef"
    assert "0123456789abcdef" in str(caught.value)


@settings(max_examples=60, deadline=None)
@given(
    chunk_size=st.integers(1, 40),
    data=st.binary(max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    metadata=st.binary(max_size=100),
)
@example(chunk_size=16, data=b"", cuts=[], metadata=b"{}")
@example(chunk_size=16, data=b"x", cuts=[], metadata=b"{}")
@example(chunk_size=16, data=b"y" * 15, cuts=[], metadata=b"{}")
@example(chunk_size=16, data=b"z" * 16, cuts=[], metadata=b"{}")
@example(chunk_size=16, data=b"w" * 17, cuts=[], metadata=b"{}")
@example(chunk_size=16, data=bytes(range(100)), cuts=[3, 50], metadata=b"{}")
def test_container_round_trip(chunk_size: int, data: bytes, cuts: list[int], metadata: bytes):
    sink = io.BytesIO()
    writer = ContainerWriter(sink, KEY, codec_id=2, chunk_size=chunk_size)
    bounds = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    for start, end in itertools.pairwise(bounds):
        writer.write(data[start:end])
    writer.finish(metadata)
    got, got_metadata, count = open_all(sink.getvalue())
    assert (got, got_metadata) == (data, metadata)
    data_chunks = max(1, -(-len(data) // chunk_size))
    assert count == writer.chunk_count == data_chunks + 1


def test_container_with_previous_key_opens_and_names_its_codec():
    blob = seal(b"rotated", 4, key=KEY)
    reader = ContainerReader(io.BytesIO(blob), Keyring(OTHER, (KEY,)), "x")
    assert DecryptedStream(reader).read() == b"rotated"
    assert reader.header.codec_id == 1 and reader.header.chunk_size == 4


def test_same_plaintext_seals_differently_each_time():
    assert seal(b"same data", 4) != seal(b"same data", 4)


def test_missing_key_names_the_key_id_needed():
    with pytest.raises(KeyNotAvailableError, match=KEY.key_id):
        open_all(seal(b"data", 4), Keyring(OTHER))


@pytest.mark.parametrize("identity", [None, IDENTITY])
def test_every_flipped_bit_is_detected_as_damage(identity):
    # The header's digest makes a damaged key id damage (exit 4), not a missing key.
    blob = seal(bytes(range(40)), 16, b'{"a":1}', identity=identity)
    for position in range(len(blob)):
        for bit in range(8):
            damaged = bytearray(blob)
            damaged[position] ^= 1 << bit
            with pytest.raises(IntegrityError):
                open_all(bytes(damaged))


def test_version_1_flipped_key_id_bit_reads_as_a_missing_key_without_a_catalog():
    blob = bytearray(seal(bytes(range(40)), 16, version=1))
    blob[KEY_ID_BYTES[0]] ^= 1
    with pytest.raises(KeyNotAvailableError):
        open_all(bytes(blob))


@pytest.mark.parametrize("version", [1, 2])
def test_key_id_other_than_the_recorded_one_is_damage_before_any_key_is_looked_up(version):
    retired = seal(b"forged", 4, key=OTHER, version=version)
    keyring = Keyring(KEY, (OTHER,))
    assert open_all(retired, keyring)[0] == b"forged"
    with pytest.raises(IntegrityError, match=f"sealed under key id {OTHER.key_id}.*{KEY.key_id}"):
        open_all(retired, keyring, expected_key_id=KEY.key_id)
    damaged = bytearray(seal(b"data", 4, version=version))
    damaged[KEY_ID_BYTES[0]] ^= 1
    with pytest.raises(IntegrityError, match=r"catalog recorded|header is damaged"):
        open_all(bytes(damaged), expected_key_id=KEY.key_id)


def test_identity_is_authenticated_and_compared_before_any_data():
    blob = seal(b"payload", 4, identity=IDENTITY)
    assert open_all(blob, expected_identity=IDENTITY)[0] == b"payload"
    assert open_all(blob, expected_identity={"set_id": "s1"})[0] == b"payload"
    asked = {**IDENTITY, "set_id": "s2", "name": "postgres/y.enc"}
    with pytest.raises(IntegrityError) as caught:
        ContainerReader(io.BytesIO(blob), Keyring(KEY), "n", expected_identity=asked)
    message = str(caught.value)
    assert "set_id s2" in message and "set_id s1" in message
    assert "name postgres/y.enc" in message and "name postgres/x.enc" in message
    with pytest.raises(IntegrityError, match="claims no identity"):
        open_all(seal(b"payload", 4), expected_identity={"set_id": "s1"})


def test_identity_edited_with_a_matching_digest_fails_authentication():
    blob = seal(b"payload", 4, identity=IDENTITY)
    raw = read_header(io.BytesIO(blob), "x")[1]
    forged_identity = {**IDENTITY, "set_id": "s2"}
    header = read_header(io.BytesIO(blob), "x")[0]
    forged = replace(header, identity=forged_identity).to_bytes()
    with pytest.raises(IntegrityError, match="chunk 0 failed authentication"):
        open_all(forged + blob[len(raw) :], expected_identity=forged_identity)


def test_version_1_containers_are_still_read():
    blob = seal(b"old data" * 10, 8, b'{"v":1}', version=1)
    assert blob[8] == 1 and header_size(blob) == HEADER_SIZE
    assert open_all(blob, expected_key_id=KEY.key_id) == (b"old data" * 10, b'{"v":1}', 11)


def test_each_purpose_derives_its_own_key_and_version_1_stays_derived_as_it_was():
    salt = bytes(32)
    purposes = (CONTAINER_KEY_V2, PACK_KEY_V2, CHUNK_ID_KEY_V2, GEAR_TABLE_V2)
    keys = {KEY.derive_key(purpose, salt) for purpose in purposes}
    keys.add(KEY.derive_artifact_key(salt))
    assert len(keys) == len(purposes) + 1
    assert KEY.container_key(1, salt) == KEY.derive_artifact_key(salt)
    assert KEY.container_key(2, salt) == KEY.derive_key(CONTAINER_KEY_V2, salt)


def test_every_truncation_is_detected_with_what_is_missing():
    data = bytes(range(40))
    blob = seal(data, 16)
    spans = records(blob, 16, len(data))
    messages = {}
    for length in range(len(blob)):
        with pytest.raises(IntegrityError) as caught:
            open_all(blob[:length])
        messages[length] = str(caught.value)
    assert messages[header_size(blob)] == (
        "postgres/x.dump.gz.enc: truncated after the header (no chunks)"
    )
    for index, (offset, _) in enumerate(spans[1:-1], start=1):
        assert messages[offset].endswith(f"truncated after chunk {index - 1} (last chunk missing)")
    metadata_offset = spans[-1][0]
    assert messages[metadata_offset].endswith("truncated after chunk 2 (metadata record missing)")
    assert messages[metadata_offset + 3].endswith("truncated inside chunk 3")
    assert messages[spans[1][0] + 10].endswith("truncated inside chunk 1")


def test_trailing_bytes_after_the_metadata_record_are_refused():
    with pytest.raises(IntegrityError, match="unexpected data after the metadata record"):
        open_all(seal(b"data", 4) + b"\0")


def test_reordered_chunks_fail_authentication():
    data = bytes(range(48))
    blob = seal(data, 16)
    (a, size), (b, _) = records(blob, 16, len(data))[:2]
    swapped = blob[:a] + blob[b : b + size] + blob[a : a + size] + blob[b + size :]
    with pytest.raises(IntegrityError, match="chunk 0 failed authentication"):
        open_all(swapped)


def test_dropped_middle_chunk_fails_authentication():
    data = bytes(range(48))
    blob = seal(data, 16)
    offset, size = records(blob, 16, len(data))[1]
    with pytest.raises(IntegrityError, match="chunk 1 failed authentication"):
        open_all(blob[:offset] + blob[offset + size :])


def test_chunk_from_another_artifact_with_the_same_key_fails_authentication():
    data = bytes(range(48))
    first, second = seal(data, 16), seal(data, 16)
    offset, size = records(first, 16, len(data))[1]
    mixed = first[:offset] + second[offset : offset + size] + first[offset + size :]
    with pytest.raises(IntegrityError, match="chunk 1 failed authentication"):
        open_all(mixed)


def test_header_of_another_artifact_fails_authentication():
    first, second = seal(b"a" * 20, 16), seal(b"a" * 20, 16)
    with pytest.raises(IntegrityError, match="chunk 0 failed authentication"):
        open_all(second[: header_size(second)] + first[header_size(first) :])


def test_last_flag_cannot_be_moved_by_cutting_a_full_chunk():
    data = bytes(range(32))
    blob = seal(data, 16)
    spans = records(blob, 16, len(data))
    # Drop the LAST chunk but keep the metadata record: a METADATA frame now
    # stands where a data chunk is due.
    cut = blob[: spans[1][0]] + blob[spans[2][0] :]
    with pytest.raises(IntegrityError, match="chunk 1 has an invalid frame"):
        open_all(cut)


def test_not_a_container_is_named():
    with pytest.raises(IntegrityError, match="not a Jarvis encrypted artifact"):
        open_all(b"\x1f\x8b" + bytes(HEADER_SIZE))
    with pytest.raises(IntegrityError, match="too short"):
        open_all(b"\x89JARVIS")
