"""Stored files this server process has hashed whole and found to be the catalog's,
remembered by what `fstat` says of them, so an unchanged one is sent again unhashed.

A download hashes every byte it sends (see `download.body`), about a CPU-second per GiB.
Once a local file was read whole and matched the catalog's SHA-256, its fingerprint is
kept here (device, inode, size, mtime_ns, ctime_ns, keyed by the artifact and its
catalogued SHA-256) in a bounded map (least recently used out). A later download whose
`fstat` of the file descriptor it OPENED equals that fingerprint, before the first byte
and again before the last, is sent without hashing while no process has the file open
for writing; anything else is hashed as before.

Why ctime: any write() call, truncate, chmod, rename or link count change sets it to the current
time, and user space cannot set it back (utime sets atime and mtime only), so a file
changed in place by any writer, or replaced by another inode, no longer matches. Two
changes within one tick of the filesystem's clock can leave the same ctime ("racy git"),
so a fingerprint is kept only when its ctime is at least SETTLE_NS older than the moment
the read that checked it began: a write after that read began has a later ctime.

Why no writer may have it open: a write through a shared memory mapping sets mtime and
ctime only when it faults a clean page in; later writes to that page (dirty until written
back, on tmpfs for ever) move neither. So a file is remembered, and sent unhashed, only
while no process has it open for writing (`no_writer`: a read lease, Linux, granted only
then, and let go at once; a mapping holds its file open). A mapping made later faults
its pages in afresh, so its first write moves ctime. Where a lease cannot be had (not the
file's owner without CAP_LEASE, a filesystem without leases, another system) every
download is hashed.

The trade-off: bytes that rot on disk under an unchanged inode (a failing medium, a
write below the filesystem) are not noticed by a repeat download of a file this process
already checked. That is what `jarvis-tui verify --all` (every artifact hashed again)
and the client's own check of `X-Content-SHA256` / `Repr-Digest` find. Only local files
are remembered: bytes read from a copy destination (S3) are always hashed.
"""

import fcntl
import os
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

CAPACITY = 4096  # fingerprints kept; a few hundred bytes each
SETTLE_NS = 2_000_000_000  # coarser than any local filesystem's ctime (FAT: 2 s)

Key = tuple[int, str, str]  # artifact id, relpath, catalogued SHA-256


@dataclass(frozen=True)
class Fingerprint:
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, fd: int) -> "Fingerprint":
        found = os.fstat(fd)
        return cls(found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


class CheckedFiles:
    """Thread-safe: downloads read and hash in worker threads."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[Key, Fingerprint] = OrderedDict()
        self._lock = threading.Lock()

    def unchanged(self, key: Key, fingerprint: Fingerprint) -> bool:
        """True when `key` matched the catalog when it had exactly this fingerprint."""
        with self._lock:
            kept = self._kept.get(key)
            if kept != fingerprint:
                return False
            self._kept.move_to_end(key)
            return True

    def remember(self, key: Key, fingerprint: Fingerprint, read_began_ns: int) -> bool:
        """Keep `fingerprint` of a file read whole from `read_began_ns` (time.time_ns)
        that matched the catalog; not when its ctime is too recent to tell a later
        change apart. True when kept."""
        if fingerprint.ctime_ns > read_began_ns - SETTLE_NS:
            self.forget(key)
            return False
        with self._lock:
            self._kept[key] = fingerprint
            self._kept.move_to_end(key)
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)
        return True

    def forget(self, key: Key) -> None:
        with self._lock:
            self._kept.pop(key, None)

    def __len__(self) -> int:
        return len(self._kept)


def read_clock() -> int:
    """The wall clock ctime is set from (not monotonic: compared with ctime)."""
    return time.time_ns()


def no_writer(fd: int) -> bool:
    """True when no process has the file of `fd` (opened read-only) open for writing now:
    a read lease on it is granted (then let go at once); False when it cannot be told."""
    if not hasattr(fcntl, "F_SETLEASE"):
        return False
    try:
        # A writer opening it while the lease is held breaks the lease with a signal to
        # this process: SIGIO by default, which would end it; SIGURG is ignored unless
        # handled, and the lease is let go at once, so the writer waits microseconds.
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError:  # EAGAIN: open for writing; EACCES, EINVAL: cannot tell
        return False
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return True
