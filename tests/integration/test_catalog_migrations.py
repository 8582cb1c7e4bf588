"""Migrations are frozen: the schema they build is the one the code declares, on SQLite
and PostgreSQL, and the first farm revision no longer reads the live table definitions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import vstudio.catalog.farm_tables
import vstudio.catalog.repo_tables
import vstudio.catalog.web_tables  # noqa: F401  (their tables join the metadata)
from vstudio.catalog.db import MIGRATIONS, open_catalog
from vstudio.catalog.tables import metadata


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        yield str(request.getfixturevalue("pg_url"))
    else:
        yield f"sqlite:///{tmp_path / 'catalog.db'}"


def test_migrated_schema_matches_the_tables_the_code_declares(db_url: str) -> None:
    engine = open_catalog(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                          "compare_server_default": False})
            diff = compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_no_migration_reads_live_table_definitions() -> None:
    for path in sorted((Path(MIGRATIONS) / "versions").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "vstudio.catalog" not in text and ".create(bind" not in text, path.name
        assert "op.create_table" in text or "op.add_column" in text or "batch" in text, \
            path.name
