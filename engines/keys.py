"""The encryption keys an operator configures, and writing them to a `.env`."""

import os
import re
from collections.abc import Mapping
from pathlib import Path

from engines.config import Settings
from engines.dotenv import read_env_file
from engines.errors import JarvisError, KeySecretError, SettingsError
from engines.key_secrets import secret_value
from engines.pipeline.crypto import Keyring, MasterKey, generate_key_hex
from engines.plumbing.fsutil import atomic_output
from engines.plumbing.os_errors import explain_os_error

KEY_VARIABLE = "BACKUP_ENCRYPTION_KEY"
PREVIOUS_VARIABLE = "BACKUP_ENCRYPTION_KEY_PREVIOUS"
SECRET_ID_VARIABLE = f"{KEY_VARIABLE}_SECRET_ID"

LOST_KEY_WARNING = (
    "Keep a copy of this key somewhere other than this host (a password manager or "
    "a secrets vault): every backup is encrypted with it, and without it no backup "
    "can ever be restored."
)


def keyring_from_settings(settings: Settings) -> Keyring:
    """The keys: from the settings, or from AWS Secrets Manager when a secret id names
    them there (fetched once per process; KeySecretError when it cannot be read)."""
    if settings.backup_encryption_key is not None:
        current = MasterKey.from_hex(settings.backup_encryption_key.reveal())
    elif settings.backup_encryption_key_secret_id:
        current = _key_from_secret(settings.backup_encryption_key_secret_id, KEY_VARIABLE, settings)
    else:
        raise SettingsError(
            [
                f"{KEY_VARIABLE}: not set; generate one with `jarvis-tui keygen --append-to .env` "
                "(or open the console, which offers to create one), or name the AWS Secrets "
                f"Manager secret holding it in {KEY_VARIABLE}_SECRET_ID"
            ]
        )
    previous = tuple(
        MasterKey.from_hex(s.reveal()) for s in settings.backup_encryption_key_previous
    )
    secret_id = settings.backup_encryption_key_previous_secret_id
    if not previous and secret_id:
        text = secret_value(secret_id, PREVIOUS_VARIABLE, settings.aws_region)
        previous = tuple(
            _checked_key(part, secret_id, PREVIOUS_VARIABLE)
            for part in text.split(",")
            if part.strip()
        )
    return Keyring(current, previous)


def key_source(settings: Settings) -> str:
    """Where the key comes from, in words (`config check`)."""
    if settings.backup_encryption_key is not None:
        return KEY_VARIABLE
    if settings.backup_encryption_key_secret_id:
        return f"AWS Secrets Manager secret {settings.backup_encryption_key_secret_id}"
    return "nowhere (not set)"


def _key_from_secret(secret_id: str, variable: str, settings: Settings) -> MasterKey:
    return _checked_key(secret_value(secret_id, variable, settings.aws_region), secret_id, variable)


def _checked_key(text: str, secret_id: str, variable: str) -> MasterKey:
    try:
        return MasterKey.from_hex(text)
    except ValueError as error:  # its message says lengths, never the characters
        raise KeySecretError(
            f"AWS Secrets Manager secret {secret_id} ({variable}_SECRET_ID) does not hold a "
            f"key: {error}; store the 64 hex characters of `jarvis-tui keygen` in it"
        ) from None


def _without_assignments(text: str, *names: str) -> list[str]:
    pattern = re.compile(rf"^\s*(?:export\s+)?(?:{'|'.join(names)})\s*=")
    return [line for line in text.splitlines() if not pattern.match(line)]


def _replace_private(path: Path, text: str) -> None:
    """Replace `path` whole: a 0600 temporary beside it, fsynced, renamed over it; the
    previous file is kept as `PATH.bak` first. A full disk or a crash at any moment leaves
    `path` as it was (or the new file complete), never a truncated one."""
    path = Path(os.path.realpath(path))  # a symlinked .env is replaced at its target
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        previous = path.stat() if path.exists() else None
        if previous is not None:
            _write_owned_like(path.with_name(path.name + ".bak"), path.read_bytes(), previous)
        _write_owned_like(path, text.encode("utf-8"), previous)
    except OSError as error:
        raise explain_os_error(error, where=path) from error


def _write_owned_like(path: Path, data: bytes, previous: os.stat_result | None) -> None:
    with atomic_output(path, mode=0o600) as handle:
        handle.write(data)
        # Run as root on a service's .env, the service must still be able to read it.
        if previous is not None and os.geteuid() == 0:
            os.fchown(handle.fileno(), previous.st_uid, previous.st_gid)


def key_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """True when the process environment sets the key, which wins over any `.env`."""
    return bool((os.environ if environ is None else environ).get(KEY_VARIABLE, "").strip())


def store_new_key(
    env_file: Path, *, rotate: bool = False, environ: Mapping[str, str] | None = None
) -> str:
    """Write a fresh key into `env_file` (mode 0600) and return its key id.

    Without `rotate` an existing key is never replaced. With `rotate` the old key
    moves to the front of BACKUP_ENCRYPTION_KEY_PREVIOUS so older backups still
    decrypt; it is refused while the environment sets the key, since the file's key is
    then not the one in effect and rotating it would keep the wrong one.
    """
    if rotate and key_from_environment(environ):
        raise SettingsError(
            [
                f"{KEY_VARIABLE} is set in the process environment, which wins over "
                f"{env_file}: rotating the file would not change the key in effect nor keep "
                "it for decryption; rotate where it is set, or unset it and run again"
            ]
        )
    existing = read_env_file(env_file) if env_file.exists() else {}
    secret_id = (os.environ if environ is None else environ).get(SECRET_ID_VARIABLE, "").strip()
    secret_id = secret_id or existing.get(SECRET_ID_VARIABLE, "").strip()
    if secret_id:
        raise JarvisError(
            f"the key is kept in AWS Secrets Manager ({SECRET_ID_VARIABLE}={secret_id}); a key "
            f"written to {env_file} would contradict it: put a new key (`jarvis-tui keygen`) "
            "in the secret, and the old one in the previous keys' secret"
        )
    text = env_file.read_text(encoding="utf-8-sig") if env_file.exists() else ""
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
    _replace_private(env_file, "\n".join([*kept, *added]) + "\n")
    return MasterKey.from_hex(new_key).key_id
