"""Sequential reads from an RDB stream: exact sizes, lengths and strings in Redis's
encodings, failing loudly (`RdbFormatError`) on a short read or damage."""

import struct
from collections.abc import Callable
from typing import BinaryIO, TypeVar

from engines.redis.rdb_values import Damaged, lzf_decompress

STEP = 1 << 20  # the most read at once
T = TypeVar("T")


class RdbFormatError(ValueError):
    """The stream is not an RDB this reader understands, or it is damaged or cut short."""


class Reader:
    """Reads from a buffered stream; `offset` counts the bytes read so far."""

    __slots__ = ("_read", "offset")

    def __init__(self, stream: BinaryIO):
        self._read = stream.read
        self.offset = 0

    def exact(self, size: int) -> bytes:
        data = self._read(size) if size <= STEP else self._in_steps(size)
        if len(data) != size:
            raise RdbFormatError(
                f"the RDB ends early at byte {self.offset + len(data)} (truncated)"
            )
        self.offset += size
        return data

    def _in_steps(self, size: int) -> bytes:
        """A big read as the data arrives: a damaged length may claim 2**64 bytes, which
        read() would refuse or try to allocate (the C walk reads until the end too)."""
        pieces = []
        while size > 0:
            piece = self._read(min(size, STEP))
            pieces.append(piece)
            if len(piece) < min(size, STEP):
                break
            size -= len(piece)
        return b"".join(pieces)

    def skip(self, size: int) -> None:
        while size > 0:
            step = min(size, STEP)
            self.exact(step)
            size -= step

    def byte(self) -> int:
        data = self._read(1)
        if not data:
            raise RdbFormatError(f"the RDB ends early at byte {self.offset} (truncated)")
        self.offset += 1
        return data[0]

    def length(self) -> int:
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte()
        if first == 0x80:
            return struct.unpack(">I", self.exact(4))[0]
        if first == 0x81:
            return struct.unpack(">Q", self.exact(8))[0]
        raise RdbFormatError(f"bad length encoding 0x{first:02x} at byte {self.offset - 1}")

    def string_size(self) -> tuple[int, int]:
        """(encoding, payload size) of the next string; encoding -1 is a plain string, 0-2
        an integer of 1 << encoding bytes, 3 LZF (the original length is left unread)."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return -1, first & 0x3F
        if kind == 1:
            return -1, ((first & 0x3F) << 8) | self.byte()
        if kind == 2:
            if first == 0x80:
                return -1, struct.unpack(">I", self.exact(4))[0]
            if first == 0x81:
                return -1, struct.unpack(">Q", self.exact(8))[0]
            raise RdbFormatError(f"bad string length 0x{first:02x} at byte {self.offset - 1}")
        encoding = first & 0x3F
        if encoding in (0, 1, 2):
            return encoding, 1 << encoding
        if encoding == 3:  # LZF: compressed length, then the original length
            return 3, self.length()
        raise RdbFormatError(f"unknown string encoding {encoding} at byte {self.offset - 1}")

    def skip_string(self) -> None:
        encoding, size = self.string_size()
        if encoding == 3:
            self.length()
        self.skip(size)

    def string(self) -> bytes:
        """An aux field's string: plain or an integer (never compressed)."""
        encoding, size = self.string_size()
        if encoding == 3:  # after its original length, before its data, as the C walk does
            self.length()
            raise RdbFormatError("compressed strings are not expected in aux fields")
        return self.plain_or_integer(encoding, size)

    def value_string(self) -> bytes:
        """A string of a key or value, in any encoding, decoded whole."""
        encoding, size = self.string_size()
        if encoding == 3:
            original = self.length()
            compressed = self.exact(size)
            return self.decoded(lzf_decompress, compressed, original)
        return self.plain_or_integer(encoding, size)

    def plain_or_integer(self, encoding: int, size: int) -> bytes:
        """The string after its `string_size` (not LZF): its bytes, or an integer's digits."""
        data = self.exact(size)
        if encoding == -1:
            return data
        return str(int.from_bytes(data, "little", signed=True)).encode()

    def decoded(self, decoder: Callable[..., T], *args: object) -> T:
        """`decoder(*args)`, its `Damaged` reported at the present offset."""
        try:
            return decoder(*args)
        except Damaged as error:
            raise self.damaged(error.what) from None

    def damaged(self, what: str) -> RdbFormatError:
        return RdbFormatError(f"damaged {what} in the value of a key at byte {self.offset}")
