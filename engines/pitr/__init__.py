"""Point-in-time recovery of PostgreSQL: WAL archiving (wal_*, archive_*, setup) and base
backups (base_*), both filed by the cluster's identity (cluster)."""
