"""The encryption keys an operator configures, and writing them to a `.env`."""

import os
import re
from pathlib import Path

from engines.config import Settings
from engines.crypto import Keyring, MasterKey, generate_key_hex
from engines.dotenv import read_env_file
from engines.errors import JarvisError, SettingsError

KEY_VARIABLE = "BACKUP_ENCRYPTION_KEY"
PREVIOUS_VARIABLE = "BACKUP_ENCRYPTION_KEY_PREVIOUS"

LOST_KEY_WARNING = (
    "Keep a copy of this key somewhere other than this host (a password manager or "
    "a secrets vault): every backup is encrypted with it, and without it no backup "
    "can ever be restored."
)


def keyring_from_settings(settings: Settings) -> Keyring:
    if settings.backup_encryption_key is None:
        raise SettingsError(
            [
                f"{KEY_VARIABLE}: not set; generate one with `jarvis-tui keygen --append-to .env` "
                "(or open the console, which offers to create one)"
            ]
        )
    current = MasterKey.from_hex(settings.backup_encryption_key.reveal())
    previous = tuple(
        MasterKey.from_hex(s.reveal()) for s in settings.backup_encryption_key_previous
    )
    return Keyring(current, previous)


def _without_assignments(text: str, *names: str) -> list[str]:
    pattern = re.compile(rf"^\s*(?:export\s+)?(?:{'|'.join(names)})\s*=")
    return [line for line in text.splitlines() if not pattern.match(line)]


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def store_new_key(env_file: Path, *, rotate: bool = False) -> str:
    """Write a fresh key into `env_file` (mode 0600) and return its key id.

    Without `rotate` an existing key is never replaced. With `rotate` the old key
    moves to the front of BACKUP_ENCRYPTION_KEY_PREVIOUS so older backups still
    decrypt.
    """
    existing = read_env_file(env_file) if env_file.exists() else {}
    text = env_file.read_text(encoding="utf-8") if env_file.exists() else ""
    old_key = existing.get(KEY_VARIABLE, "").strip()
    if old_key and not rotate:
        raise JarvisError(
            f"{env_file} already sets {KEY_VARIABLE}; use `jarvis-tui keygen --rotate "
            f"--append-to {env_file}` to replace it while keeping the old key for decryption"
        )
    new_key = generate_key_hex()
    added = [f"{KEY_VARIABLE}={new_key}"]
    if old_key:
        earlier = [k.strip() for k in existing.get(PREVIOUS_VARIABLE, "").split(",") if k.strip()]
        added.append(f"{PREVIOUS_VARIABLE}={','.join([old_key, *earlier])}")
    kept = _without_assignments(text, *(line.split("=", 1)[0] for line in added))
    _write_private(env_file, "\n".join([*kept, *added]) + "\n")
    return MasterKey.from_hex(new_key).key_id
