"""Damage to valid inputs: cuts, changed bytes, inserted tokens, dropped and repeated
ranges, pieces of another input. Chosen from one seed that hypothesis draws, which
costs it one draw instead of a few dozen (under ASan hypothesis's own work would
otherwise be most of the run)."""

import random

KINDS = ("byte", "insert", "token", "drop", "repeat", "cut", "splice")


def apply(data: bytes, edits: list[tuple], tokens: list[bytes], other: bytes = b"") -> bytes:
    """`data` with `edits`, each (kind, position, length, byte, token index); positions
    are taken modulo the size at that point, so any edit fits any input."""
    out = bytearray(data)
    for kind, position, length, value, token in edits:
        at = position % (len(out) + 1)
        end = min(len(out), at + length)
        if kind == "byte" and at < len(out):
            out[at] = value
        elif kind == "insert":
            out[at:at] = bytes([value]) * (length % 4 + 1)
        elif kind == "token" and tokens:
            out[at:end] = tokens[token % len(tokens)]
        elif kind == "drop":
            del out[at:end]
        elif kind == "repeat":
            out[at:at] = out[at:end]
        elif kind == "cut":
            del out[at:]
        elif kind == "splice" and other:
            start = token % len(other)
            out[at:end] = other[start : start + length]
    return bytes(out)


def damage(data: bytes, seed: int, tokens: list[bytes], other: bytes = b"") -> bytes:
    """`data` with one to four edits chosen by `seed`, near each other as often as not."""
    rnd = random.Random(seed)
    around = rnd.randrange(len(data) + 1)
    changes = []
    for _ in range(rnd.randint(1, 4)):
        position = around + rnd.randint(-8, 8) if rnd.randrange(2) else rnd.randrange(1 << 32)
        length = rnd.choice([0, 1, 1, 2, 4, 8, rnd.randrange(65)])
        changes.append((rnd.choice(KINDS), max(position, 0), length, rnd.randrange(256),
                        rnd.randrange(1 << 16)))  # fmt: skip
    return apply(data, changes, tokens, other)
