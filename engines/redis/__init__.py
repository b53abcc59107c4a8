"""Redis: RDB snapshots over the replication protocol, TTL-keeping JSON exports, and
restores into a running server (scratch server + DUMP/RESTORE) or a stopped one's folder."""
