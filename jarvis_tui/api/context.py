"""What every route reads: the settings and the workspace, opened once per server."""

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from engines.catalog import Catalog
from engines.config import Settings
from engines.workspace import Workspace
from jarvis_tui.api.download.checked_files import CheckedFiles


@dataclass
class ApiContext:
    settings: Settings
    env_file: Path | None  # handed to the job processes the API starts
    workspace: Workspace
    # Stored files downloads hashed whole and found unchanged since (one map per server).
    checked_files: CheckedFiles = field(default_factory=CheckedFiles)

    @property
    def catalog(self) -> Catalog:
        return self.workspace.catalog


def api_context(request: Request) -> ApiContext:
    """The route dependency: `context: ApiContext = Depends(api_context)`."""
    return request.app.state.context
