"""Keys of the files store, all derived from the master key.

Chunk ids are HMAC-SHA256 of the plaintext under a key only the master key
holder can derive, so an id never reveals a plaintext hash; the chunker's gear
table is keyed the same way, so chunk boundaries do not reveal content either.
"""

import hashlib
import hmac
from dataclasses import dataclass

from engines.crypto import MasterKey

ID_SIZE = 32


def _label(purpose: str) -> bytes:
    # A fixed, purpose-specific HKDF salt: the derived key is deterministic for a
    # master key (so ids are stable across runs) and independent of every artifact
    # key, whose salts are random.
    return hashlib.sha256(f"jarvis files store v1: {purpose}".encode()).digest()


@dataclass(frozen=True)
class StoreKeys:
    key_id: str
    chunk_id_key: bytes
    gear_seed: bytes

    def chunk_id(self, data: bytes | memoryview) -> bytes:
        return hmac.new(self.chunk_id_key, data, hashlib.sha256).digest()


def store_keys(key: MasterKey) -> StoreKeys:
    return StoreKeys(
        key.key_id,
        key.derive_artifact_key(_label("chunk id")),
        key.derive_artifact_key(_label("gear table")),
    )
