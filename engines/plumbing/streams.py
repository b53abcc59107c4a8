"""Reading a binary stream that may hand back less than asked (pipes, sockets, ranges)."""

from typing import BinaryIO


def read_up_to(stream: BinaryIO, size: int) -> bytes:
    """`size` bytes of `stream`, fewer only at its end."""
    parts = []
    while size > 0:
        part = stream.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)
