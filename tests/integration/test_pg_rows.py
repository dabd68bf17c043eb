"""``Database.statements`` on PostgreSQL runs the payment path's statements straight through
psycopg in pipeline mode (``db.pg_rows``). Beside what ``tests/unit/test_database.py``
checks on both databases (the stored rows, row counts, a taken key), a statement sent ahead
of its answer that fails must roll the transaction back, and the pool must get its
connection back as it found it, or not at all when it broke."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from haetae.db.engine import Database
from haetae.db.pg_rows import BatchedTransaction
from haetae.merchants.models import Merchant
from haetae.payments import repository
from tests.helpers import new_payment, stored_rows, terminate_backend

MOMENT = datetime(2026, 12, 7, 5, 0, 1, 234_567, tzinfo=UTC)


async def test_a_statement_sent_ahead_that_fails_rolls_the_transaction_back(
    database_url: str,
) -> None:
    db = Database(database_url, pool_size=1, max_overflow=0)
    try:
        async with db.transaction() as session:
            session.add(Merchant(id="mer-1", name="shop"))
        async with db.statements() as direct:
            await repository.insert_payment(direct, new_payment("pay-a", MOMENT))
        with pytest.raises(psycopg.IntegrityError):  # found at the commit
            async with db.statements() as direct:
                await repository.insert_payment(direct, new_payment("pay-d", MOMENT))
                await repository.insert_payment(direct, new_payment("pay-a", MOMENT))  # taken id
        # The pool's one connection is back in SQLAlchemy's transaction mode: a session's
        # rollback still undoes its insert.
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                session.add(new_payment("pay-e", MOMENT))
                await session.flush()
                raise RuntimeError("the caller failed")
    finally:
        await db.dispose()
    found = stored_rows(database_url, "payments", "pay-a", "pay-d", "pay-e")
    assert [bool(row) for row in found] == [True, False, False]


async def test_a_connection_lost_mid_transaction_is_not_given_back(database_url: str) -> None:
    db = Database(database_url, pool_size=1, max_overflow=0)
    try:
        async with db.transaction() as session:
            session.add(Merchant(id="mer-1", name="shop"))
        with pytest.raises(psycopg.OperationalError):
            async with db.statements() as direct:
                assert isinstance(direct, BatchedTransaction)
                terminate_backend(database_url, direct.backend_pid)  # a restart, a failover
                await repository.update_payment(direct, new_payment("pay-x", MOMENT), "authorizing")
        async with db.statements() as direct:  # a new connection, not the broken one
            await repository.insert_payment(direct, new_payment("pay-y", MOMENT))
    finally:
        await db.dispose()
    assert stored_rows(database_url, "payments", "pay-y")[0]


async def test_values_bound_on_the_client_are_stored_exactly(database_url: str) -> None:
    """Values are quoted by psycopg's adapters into statements joined by semicolons: quotes,
    semicolons, placeholders and Korean text in them are stored as given, never run."""
    awkward = "o-1'; DELETE FROM payments; --%s %(x)s %% \\ 주문"
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            session.add(Merchant(id="mer-1", name="shop"))
        async with db.statements() as direct:
            first = new_payment("pay-a", MOMENT)
            first.order_id, first.error_params = awkward, {"note": awkward}
            await repository.insert_payment(direct, first)
            await repository.insert_payment(direct, new_payment("pay-b", MOMENT))
    finally:
        await db.dispose()
    a, b = stored_rows(database_url, "payments", "pay-a", "pay-b")
    assert a["order_id"] == awkward and a["error_params"] == {"note": awkward}
    assert b["order_id"] == "o-1"
