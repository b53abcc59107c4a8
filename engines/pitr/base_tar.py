"""Reading a base backup's tar as it streams past: each file's size and SHA-256, the few
small files that say what the backup is, and the check against its backup_manifest.

The same walk runs while pg_basebackup writes (so the catalog records what the tar
holds), on `verify --read-data` and on a restore, so nothing unencrypted is ever
written just to be checked. Only the 512-byte ustar headers pg_basebackup writes are
read (with pax and GNU long names for safety); the manifest comes last in the stream,
so the files' digests are kept until it arrives.
"""

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

BLOCK = 512
MANIFEST = "backup_manifest"
# Read whole: small files naming the backup (pg_control's first bytes: the system id).
KEPT = {"backup_label": 4096, "global/pg_control": 64, "PG_VERSION": 64, MANIFEST: 1 << 30}
# pg_verifybackup leaves these out of its check as well: the server rewrites them freely.
NOT_IN_MANIFEST = ("backup_manifest", "pg_wal/", "postgresql.auto.conf.tmp")
_LABEL_LINE = re.compile(r"^([A-Z ]+): (.*)$", re.MULTILINE)


class TarFormatError(ValueError):
    """The stream is not the tar pg_basebackup writes."""


@dataclass(frozen=True)
class Member:
    size: int
    sha256: str


@dataclass
class BaseTarWalk:
    """Fed the tar's bytes in any block sizes; `files` maps each regular file to its digest."""

    files: dict[str, Member] = field(default_factory=dict)
    kept: dict[str, bytes] = field(default_factory=dict)
    finished: bool = False
    _buffer: bytearray = field(default_factory=bytearray)
    _name: str | None = None  # the file whose data is being read
    _left: int = 0  # its bytes still to come
    _size: int = 0
    _padding: int = 0
    _digest: Any = None
    _long_name: str | None = None
    _meta_type: bytes | None = None  # a pax or GNU long-name header's data being read

    def watch(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        for block in blocks:
            self.feed(block)
            yield block

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._left:
                take = view[: self._left]
                self._data(take)
                self._left -= len(take)
                view = view[len(take) :]
                if not self._left:
                    self._end_member()
            elif self._padding:
                skip = min(self._padding, len(view))
                self._padding -= skip
                view = view[skip:]
            else:
                need = BLOCK - len(self._buffer)
                self._buffer += view[:need]
                view = view[need:]
                if len(self._buffer) == BLOCK:
                    header = bytes(self._buffer)
                    self._buffer.clear()
                    self._header(header)

    def _header(self, header: bytes) -> None:
        if self.finished:
            return
        if header == bytes(BLOCK):
            self.finished = True  # the end-of-archive blocks; anything after is padding
            return
        if header[257:262] != b"ustar":
            raise TarFormatError("not a ustar header where one was expected")
        size = _size(header[124:136])
        kind = header[156:157]
        name = self._long_name or _name(header)
        self._long_name = None
        self._padding = -size % BLOCK
        if kind in (b"x", b"L"):
            self._meta_type, self._name, self._digest = kind, None, bytearray()
        elif kind in (b"0", b"\0", b"7"):
            self._meta_type, self._name, self._digest = None, name, hashlib.sha256()
            if name in KEPT:
                self.kept[name] = b""
        else:  # folders, links: nothing to hash
            self._padding = 0
            return
        self._left = size
        self._size = size
        if not size:
            self._end_member()

    def _data(self, chunk: memoryview) -> None:
        if self._meta_type is not None:
            self._digest += chunk
            return
        self._digest.update(chunk)
        if self._name in self.kept and len(self.kept[self._name]) < KEPT[self._name]:
            self.kept[self._name] += bytes(chunk)

    def _end_member(self) -> None:
        if self._meta_type == b"L":
            self._long_name = _normal(bytes(self._digest).rstrip(b"\0").decode())
        elif self._meta_type == b"x":
            self._long_name = _pax_path(bytes(self._digest))
        elif self._name is not None:
            self.files[self._name] = Member(self._size, self._digest.hexdigest())
        self._meta_type = self._name = self._digest = None

    # What the small files say.

    def label(self) -> dict[str, str]:
        text = self.kept.get("backup_label", b"").decode(errors="replace")
        return {key: value.strip() for key, value in _LABEL_LINE.findall(text)}

    def system_identifier(self) -> str | None:
        control = self.kept.get("global/pg_control", b"")
        return str(int.from_bytes(control[:8], "little")) if len(control) >= 8 else None

    def manifest(self) -> dict[str, Any] | None:
        raw = self.kept.get(MANIFEST)
        return json.loads(raw) if raw else None

    def problems(self) -> list[str]:
        """What in the tar disagrees with its manifest (nothing: []); the manifest's own
        checksum first, then each file it lists, then files it does not know."""
        raw = self.kept.get(MANIFEST)
        if not self.finished:
            return ["the tar ends before its end-of-archive blocks (truncated)"]
        if raw is None:
            return ["the tar holds no backup_manifest"]
        problems = []
        body, found, _ = raw.rpartition(b'"Manifest-Checksum"')
        checksum = json.loads(raw).get("Manifest-Checksum")
        if not found or hashlib.sha256(body).hexdigest() != checksum:
            problems.append("backup_manifest does not match its own checksum")
        listed = json.loads(raw).get("Files", [])
        for entry in listed:
            path, member = entry["Path"], self.files.get(entry["Path"])
            if member is None:
                problems.append(f"{path}: in the manifest, missing from the tar")
            elif member.size != entry["Size"]:
                problems.append(f"{path}: {member.size} bytes, the manifest says {entry['Size']}")
            elif entry.get("Checksum-Algorithm") == "SHA256" and member.sha256 != entry.get(
                "Checksum"
            ):
                problems.append(f"{path}: its SHA-256 differs from the manifest's")
        known = {entry["Path"] for entry in listed}
        extra = [p for p in self.files if p not in known and not p.startswith(NOT_IN_MANIFEST)]
        problems += [f"{path}: in the tar, not in the manifest" for path in extra]
        return problems


def _size(field_bytes: bytes) -> int:
    if field_bytes[0] & 0x80:  # base-256, for files of 8 GiB and more
        return int.from_bytes(field_bytes[1:], "big")
    text = field_bytes.rstrip(b"\0 ").decode() or "0"
    try:
        return int(text, 8)
    except ValueError:
        raise TarFormatError(f"a tar header's size field is not octal: {text!r}") from None


def _name(header: bytes) -> str:
    name = header[0:100].split(b"\0", 1)[0].decode()
    prefix = header[345:500].split(b"\0", 1)[0].decode()
    return _normal(f"{prefix}/{name}" if prefix else name)


def _normal(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _pax_path(records: bytes) -> str | None:
    for line in records.decode(errors="replace").splitlines():
        _, _, pair = line.partition(" ")
        key, _, value = pair.partition("=")
        if key == "path":
            return _normal(value)
    return None
