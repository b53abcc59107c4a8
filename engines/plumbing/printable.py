"""Text from outside (file names, set ids, messages) made safe for a terminal.

A file name may hold control characters: ESC starts a sequence that sets the window title,
clears the screen or writes the clipboard, a newline forges a line of its own. Shown to an
operator they appear escaped (`\\x1b`, `\\n`), never acted on.
"""

import re

# C0 and C1 controls, DEL, the bidirectional overrides that reorder what is shown, and the
# bytes of a name that is not UTF-8 (surrogate escapes: written raw, 0x9b is a CSI).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\udc80-\udcff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character written as a visible escape."""
    return _CONTROLS.sub(_escaped, text)
