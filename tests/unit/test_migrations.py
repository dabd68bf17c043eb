"""The migrations create exactly the schema the models describe (on the database the suite
runs against: SQLite here, PostgreSQL in the integration run)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.sql import ClauseElement

from haetae.db.base import Base
from haetae.db.engine import sync_url
from haetae.db.registry import import_all_models
from haetae.payments.reversals import owed_reversals
from haetae.risk.decisions.service import reissue_lookup
from haetae.services import Services

# Indexes whose columns differ by dialect, so that only their migration describes them.
MIGRATION_ONLY_INDEXES = {"ix_risk_decisions_report"}


def _declared_by_the_models(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    import_all_models()
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "include_object": _declared_by_the_models},
            )
            drift = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert drift == []


def test_the_migrations_add_the_safety_report_index(database_url: str) -> None:
    from haetae.safety_report.metrics import has_report_index

    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            assert has_report_index(connection)
    finally:
        engine.dispose()


async def _plan(services: Services, query: ClauseElement) -> str:
    """How the database would run ``query`` as the service sends it (bound parameters stay
    parameters)."""
    compiled = query.compile(dialect=services.db.engine.dialect)
    async with services.db.transaction() as session:
        connection = await session.connection()
        if services.db.is_sqlite:
            sql, params = f"EXPLAIN QUERY PLAN {compiled.string}", tuple(compiled.params.values())
        else:  # on an empty table PostgreSQL would rather scan it
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            sql, params = f"EXPLAIN {compiled.string}", dict(compiled.params)  # type: ignore[assignment]
        plan = await connection.exec_driver_sql(sql, params)
        return " ".join(str(row[-1]) for row in plan)


async def test_a_redelivered_reissue_is_found_through_the_partial_index(
    services: Services,
) -> None:
    """The reissue lookup reads the small partial index (migration 0010), on either
    database."""
    detail = await _plan(services, reissue_lookup("evt_x"))
    assert "ix_risk_decisions_reissue_event" in detail, detail
    assert not await services.decisions.reissue_decided("evt_x")


async def test_the_reversal_sweep_reads_the_partial_index_of_owed_reversals(
    services: Services,
) -> None:
    """Only payments owing a reversal are in its index (migration 0011), and the sweep's
    query is one both databases can prove it applies to."""
    detail = await _plan(services, owed_reversals(services.clock()))
    assert "ix_payments_reversal_owed" in detail, detail
