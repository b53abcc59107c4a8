"""POST /api/backups/{id}/restore: the request bodies, the typed confirmation, the plan."""
