"""What lives where in a demo's folder, and the console's settings naming it all."""

from dataclasses import dataclass
from pathlib import Path

from engines.demo.platform_files import PlatformFiles
from engines.demo.postgres_data import DATABASE, USER
from engines.servers.process import LOOPBACK


@dataclass(frozen=True)
class DemoLayout:
    """What lives where in a demo's folder."""

    folder: Path

    @property
    def env_file(self) -> Path:
        return self.folder / ".env"

    @property
    def repository(self) -> Path:
        return self.folder / "repository"

    @property
    def files(self) -> PlatformFiles:
        return PlatformFiles(self.folder / "jarvis")

    def settings(self, postgres_port: int, redis_port: int) -> dict[str, str]:
        files = self.files
        return {
            "BACKUP_DIR": str(self.repository),
            "BACKUP_CATALOG_PATH": str(self.folder / "catalog.sqlite3"),
            "BACKUP_LOG_DIR": str(self.folder / "logs"),
            "POSTGRES_HOST": LOOPBACK,
            "POSTGRES_PORT": str(postgres_port),
            "POSTGRES_USER": USER,
            "POSTGRES_DB": DATABASE,
            "REDIS_URL": f"redis://{LOOPBACK}:{redis_port}/0",
            "BACKUP_FILE_PATHS": f"{files.uploads},{files.generated}",
            "BACKUP_SECRET_FILES": str(files.app_env),
            "BACKUP_CONFIG_PATHS": str(files.config),
            # The complete-system restore stops and starts the app around it: none here.
            "JARVIS_STOP_COMMAND": "echo the demo platform has no application to stop",
            "JARVIS_START_COMMAND": "echo the demo platform has no application to start",
        }
