"""Inputs handed to the C code in malloc blocks of exactly their size.

A bytes object keeps a spare NUL after its data, so a read one byte too far would go
unseen; a block from malloc (ASan's, in the sanitized process) reports it."""

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]


@contextmanager
def exact_buffer(data: bytes) -> Iterator[memoryview]:
    """A writable view of a copy of `data`, freed on leaving."""
    address = _libc.malloc(len(data) or 1)
    if not address:
        raise MemoryError
    try:
        ctypes.memmove(address, data, len(data))
        view = memoryview((ctypes.c_ubyte * len(data)).from_address(address)).cast("B")
        try:
            yield view
        finally:
            view.release()
    finally:
        _libc.free(address)
