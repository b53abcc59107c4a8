"""The demo's files: music users uploaded and music Jarvis generated (the guide's
/tmp/jarvis-music-uploads and /tmp/jarvis-generated-music), the app's `.env` of secrets
and its config folder. Audio is fixed pseudo-random bytes: it compresses like real audio
(not at all) and is the same in every demo."""

import os
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

UPLOADING_USERS = 8
UPLOADS_PER_USER = 3
GENERATED_TRACKS = 24

CONFIG_FILES = {
    "app.yaml": (
        "# Jarvis application settings (demo)\n"
        "server:\n  port: 4000\n  workers: 4\n"
        "assistant:\n  model: jarvis-large\n  max_context_messages: 40\n"
        "music:\n  default_bpm: 96\n  formats: [mp3, wav]\n"
    ),
    "models.json": (
        '{\n  "chat": {"name": "jarvis-large", "temperature": 0.6},\n'
        '  "music": {"name": "jarvis-compose", "max_seconds": 300}\n}\n'
    ),
    "features.toml": "[features]\nplaylists = true\nvoice_replies = true\nbeta_studio = false\n",
    "nginx/jarvis.conf": (
        "server {\n    listen 80;\n    server_name jarvis.example;\n"
        "    location /api/ { proxy_pass http://127.0.0.1:4000; }\n}\n"
    ),
}


@dataclass(frozen=True)
class PlatformFiles:
    """Where the demo's files are, as the console's settings name them."""

    root: Path

    @property
    def uploads(self) -> Path:
        return self.root / "music-uploads"

    @property
    def generated(self) -> Path:
        return self.root / "generated-music"

    @property
    def app_env(self) -> Path:
        return self.root / ".env"

    @property
    def config(self) -> Path:
        return self.root / "config"


def _audio(seed: int, size: int) -> bytes:
    # An ID3 header, then noise: enough for `file` to call it MP3 and for gzip to give up.
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + random.Random(seed).randbytes(size)


def write_platform_files(files: PlatformFiles) -> None:
    """The music and config folders, unless an earlier start wrote them (they are kept)."""
    if not files.uploads.exists():
        for user in range(1, UPLOADING_USERS + 1):
            folder = files.uploads / f"user-{user:03d}"
            folder.mkdir(parents=True)
            for n in range(1, UPLOADS_PER_USER + 1):
                seed = user * 100 + n
                (folder / f"voice-memo-{n}.mp3").write_bytes(_audio(seed, 8_000 + seed * 37))
    if not files.generated.exists():
        files.generated.mkdir(parents=True)
        for n in range(1, GENERATED_TRACKS + 1):
            path = files.generated / f"track-{n:04d}.mp3"
            path.write_bytes(_audio(10_000 + n, 16_000 + n * 1_500))
    if not files.config.exists():
        for name, text in CONFIG_FILES.items():
            path = files.config / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def write_app_env(files: PlatformFiles, database_url: str, redis_url: str) -> None:
    """The app's secrets: made up for the demo, new each time its servers start."""
    lines = [
        "# The Jarvis app's secrets (demo values, not real credentials)",
        "NODE_ENV=production",
        f"DATABASE_URL={database_url}",
        f"REDIS_URL={redis_url}",
        f"JWT_SECRET={secrets.token_hex(32)}",
        f"OPENAI_API_KEY=sk-demo-{secrets.token_hex(20)}",
        f"MUSIC_API_KEY=demo-{secrets.token_hex(16)}",
    ]
    files.root.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(files.app_env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(lines) + "\n")
