"""Keys of the files store, all derived from the master key.

Chunk ids are HMAC-SHA256 of the plaintext under a key only the master key
holder can derive, so an id never reveals a plaintext hash; the chunker's gear
table is keyed the same way, so chunk boundaries do not reveal content either.

Chunk ids are versioned, and every snapshot manifest names the version of its own
(absent: v1). v1 derived the HMAC key with the HKDF `info` shared with v1
containers, whose salt a forged v1 header can choose (this very salt, say), so
that container key would equal the chunk-id key; v2 has an `info` of its own.
The gear table is not versioned: only boundaries depend on it, never what is stored.
"""

import hashlib
import hmac
from dataclasses import dataclass

from engines.pipeline.crypto import CHUNK_ID_KEY_V2, GEAR_TABLE_V2, MasterKey

ID_SIZE = 32
CHUNK_IDS_V1 = 1
CHUNK_IDS_V2 = 2
CHUNK_ID_VERSIONS = (CHUNK_IDS_V1, CHUNK_IDS_V2)
CURRENT_CHUNK_IDS = CHUNK_IDS_V2


def _label(purpose: str) -> bytes:
    # A fixed, purpose-specific HKDF salt: the derived key is deterministic for a
    # master key (so ids are stable across runs) and, with the v2 `info` per purpose,
    # independent of every other key whatever salt a header names (the salt text is
    # unchanged from v1: the version lives in the `info`).
    return hashlib.sha256(f"jarvis files store v1: {purpose}".encode()).digest()


@dataclass(frozen=True)
class StoreKeys:
    key_id: str
    chunk_id_key: bytes
    gear_seed: bytes
    chunk_id_version: int = CURRENT_CHUNK_IDS

    def chunk_id(self, data: bytes | memoryview) -> bytes:
        return hmac.new(self.chunk_id_key, data, hashlib.sha256).digest()


def store_keys(key: MasterKey, chunk_id_version: int = CURRENT_CHUNK_IDS) -> StoreKeys:
    """The store's keys, chunk ids named under `chunk_id_version` (a manifest's own)."""
    if chunk_id_version == CHUNK_IDS_V1:
        chunk_id_key = key.derive_artifact_key(_label("chunk id"))
    elif chunk_id_version == CHUNK_IDS_V2:
        chunk_id_key = key.derive_key(CHUNK_ID_KEY_V2, _label("chunk id"))
    else:
        raise ValueError(f"unknown chunk-id derivation {chunk_id_version}")
    gear_seed = key.derive_key(GEAR_TABLE_V2, _label("gear table"))
    return StoreKeys(key.key_id, chunk_id_key, gear_seed, chunk_id_version)
