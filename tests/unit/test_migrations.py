"""The migrations create exactly the schema the models describe (on the database the suite
runs against: SQLite here, PostgreSQL in the integration run)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from haetae.db.base import Base
from haetae.db.engine import sync_url
from haetae.db.registry import import_all_models


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    import_all_models()
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            drift = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert drift == []
