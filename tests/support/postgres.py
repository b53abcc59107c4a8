"""A throwaway PostgreSQL cluster for a test: the engine's (engines/servers/postgres.py)
in a temporary folder of the test run."""

from pathlib import Path

from engines.servers import postgres
from engines.servers.process import unprivileged_account
from tests.support.processes import TrackedServer, make_server_folder


class PostgresServer(TrackedServer, postgres.PostgresServer):
    def __init__(
        self,
        *,
        bin_dir: Path | None = None,
        data_source: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        account = unprivileged_account("postgres")
        super().__init__(
            make_server_folder(self.kind, account),
            account,
            bin_dir=bin_dir,
            data_source=data_source,
            settings=settings,
        )
