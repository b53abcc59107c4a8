"""PostgreSQL backups and restores with the real pg_dump, pg_dumpall, pg_restore and psql.

`engines/sources/postgres.py` is the thin Source face over these modules.
"""
