"""A long-running WAL worker's settings follow its env file (engines/pitr/settings_refresh.py):
a key rotated there reaches it; a half-written file keeps what it had."""

import os

from engines.config import load_settings
from engines.pipeline.crypto import generate_key_hex
from engines.pitr.settings_refresh import FreshSettings


def test_a_key_rotated_in_the_env_file_reaches_a_running_worker(tmp_path, isolated_env) -> None:
    env_file = tmp_path / "jarvis.env"
    first, second = generate_key_hex(), generate_key_hex()
    base = f"BACKUP_DIR={tmp_path / 'repository'}\n"
    env_file.write_text(f"{base}BACKUP_ENCRYPTION_KEY={first}\n")
    fresh = FreshSettings(load_settings(env_file=env_file))
    settings = fresh()
    assert fresh() is settings  # unchanged file: not read again
    env_file.write_text(
        f"{base}BACKUP_ENCRYPTION_KEY={second}\nBACKUP_ENCRYPTION_KEY_PREVIOUS={first}\n"
    )
    rotated = fresh()
    assert rotated.backup_encryption_key.reveal() == second
    env_file.write_text(f"{base}BACKUP_ENCRYPTION_KEY=12\n")  # half written: not valid
    assert fresh() is rotated
    env_file.write_text(f"{base}BACKUP_ENCRYPTION_KEY={second}\n")
    os.utime(env_file, ns=(1, 1))  # a time going back still counts as a change
    assert fresh().backup_encryption_key_previous == ()
