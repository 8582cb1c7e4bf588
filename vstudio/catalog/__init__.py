"""The catalog: SQL metadata (users, tokens, projects, rights, locks, revisions, jobs).

SQLite by default (WAL mode), PostgreSQL at scale. Schema changes are Alembic
migrations; each domain keeps its own migration branch off the base revision so that
the parts of the studio can grow their tables independently (``alembic upgrade heads``).
"""
