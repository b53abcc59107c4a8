"""keep_freed_memory: reading an artifact back no longer faults every block in afresh."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from engines.pipeline.allocator import keep_freed_memory

ROOT = Path(__file__).resolve().parent.parent
KEY_HEX = "42" * 32

# Streams a 96 MiB artifact back and prints the page faults it took.
READ_BACK = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from engines.pipeline.allocator import keep_freed_memory
    from engines.pipeline.artifacts import PlainBlocks
    from engines.pipeline.crypto import Keyring, MasterKey

    if sys.argv[2] == "kept":
        assert keep_freed_memory()
    blocks = PlainBlocks(Path(sys.argv[1]), Keyring(MasterKey.from_hex(sys.argv[3])))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    size = sum(len(block) for block in blocks)
    print(size, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def test_it_takes_effect_on_this_platform() -> None:
    assert keep_freed_memory() is True


def test_reading_an_artifact_back_faults_far_fewer_pages(tmp_path: Path) -> None:
    from engines.pipeline.artifacts import write_artifact
    from engines.pipeline.crypto import Keyring, MasterKey

    block = os.urandom(4096) * 16 + bytes(64 * 1024)  # compresses, as a dump does
    total = 96 * 1024 * 1024
    path = tmp_path / "dump.gz.enc"
    keyring = Keyring(MasterKey.from_hex(KEY_HEX))
    write_artifact((block for _ in range(total // len(block))), path, keyring, {}, level=1)

    def faults(how: str) -> int:
        result = subprocess.run(
            [sys.executable, "-c", READ_BACK, str(path), how, KEY_HEX],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        size, count = map(int, result.stdout.split())
        assert size == total
        return count

    by_default, kept = faults("default"), faults("kept")
    # Faulting each block in afresh is one fault per 4 KiB page streamed: 24,576 here.
    assert by_default > total // 4096 // 2
    assert kept < by_default // 4
