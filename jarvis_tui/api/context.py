"""What every route reads: the settings and the workspace, opened once per server."""

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from engines.catalog import Catalog
from engines.config import Settings
from engines.workspace import Workspace


@dataclass
class ApiContext:
    settings: Settings
    env_file: Path | None  # handed to the job processes the API starts
    workspace: Workspace

    @property
    def catalog(self) -> Catalog:
        return self.workspace.catalog


def api_context(request: Request) -> ApiContext:
    """The route dependency: `context: ApiContext = Depends(api_context)`."""
    return request.app.state.context
