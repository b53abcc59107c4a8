"""A writer killed mid-artifact leaves no half artifact under the final name."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engines.pipeline.artifacts import (
    open_artifact_plain,
    sidecar_path_for,
    verify_artifact,
    write_artifact,
)
from engines.pipeline.crypto import Keyring, MasterKey, generate_key_hex
from engines.plumbing.fsutil import TEMP_MARKER, remove_abandoned_temporaries

ROOT = Path(__file__).resolve().parent.parent
KEY_HEX = generate_key_hex()

SLOW_WRITER = """
import os, sys, time
from pathlib import Path
from engines.pipeline.artifacts import write_artifact
from engines.pipeline.crypto import Keyring, MasterKey

def endless_slow_source():
    while True:
        yield os.urandom(256 * 1024)
        time.sleep(0.005)

keyring = Keyring(MasterKey.from_hex(os.environ["TEST_KEY_HEX"]))
write_artifact(endless_slow_source(), Path(sys.argv[1]), keyring, {"source": "files"})
"""


def wait_for_temporary(folder: Path, child: subprocess.Popen, min_size: int) -> Path:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert child.poll() is None, "the writer ended on its own"
        for path in folder.iterdir():
            if TEMP_MARKER in path.name and path.stat().st_size >= min_size:
                return path
        time.sleep(0.02)
    raise AssertionError("the writer never produced a temporary file")


def test_sigkill_mid_write_leaves_only_a_removable_temporary(tmp_path: Path):
    folder = tmp_path / "files"
    folder.mkdir()
    final = folder / "home.tar.gz.enc"
    env = {**os.environ, "TEST_KEY_HEX": KEY_HEX, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(final)], env=env)
    try:
        temporary = wait_for_temporary(folder, child, min_size=3 * 1024 * 1024)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL

    assert not final.exists()
    assert not sidecar_path_for(final).exists()
    assert [p.name for p in folder.iterdir()] == [temporary.name]
    assert temporary.name.startswith(f".{final.name}{TEMP_MARKER}{child.pid}-")

    assert remove_abandoned_temporaries(tmp_path) == [temporary]
    assert list(folder.iterdir()) == []

    keyring = Keyring(MasterKey.from_hex(KEY_HEX))
    write_artifact([b"after the crash"], final, keyring, {"source": "files"})
    assert verify_artifact(final, keyring).ok
    with open_artifact_plain(final, keyring) as plain:
        assert plain.read() == b"after the crash"
