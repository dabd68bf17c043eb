"""SQLite specifics of the embedded default: who takes the file's write lock, and who
checkpoints its WAL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from haetae.db.buffered import RowBuffer
from haetae.db.checkpointer import BACKSTOP_PAGES
from haetae.db.engine import DEFAULT_AUTOCHECKPOINT_PAGES, Database, Statements
from haetae.db.migrate import upgrade
from haetae.db.pg_rows import BatchedTransaction
from haetae.db.sqlite_rows import DirectTransaction
from haetae.merchants.models import Merchant
from haetae.payments import repository
from haetae.payments.idempotency import Claim, IdempotencyKeys, KeyTaken
from haetae.risk.decisions.service import record_decision
from tests.helpers import new_payment, query_rows, stored_rows, write_through_core


def _other_process_can_write(path: str) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def test_reads_leave_the_write_lock_to_others_and_writes_take_it(tmp_path: Path) -> None:
    path = str(tmp_path / "lock.db")  # SQLite's file lock, whatever the suite runs on
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    try:
        async with db.sessions() as session:
            await session.execute(text("SELECT count(*) FROM payments"))
            assert _other_process_can_write(path)
        async with db.transaction() as session:
            await session.execute(text("SELECT count(*) FROM payments"))
            assert not _other_process_can_write(path)
    finally:
        await db.dispose()


def _rows_in_main_file(path: str, copy: Path) -> int:
    """Rows the database file itself holds, without its WAL: what checkpoints have copied."""
    copy.write_bytes(Path(path).read_bytes())
    other = sqlite3.connect(copy)
    try:
        return int(other.execute("SELECT count(*) FROM blobs").fetchone()[0])
    except sqlite3.DatabaseError:  # copied mid-checkpoint: try again
        return 0
    finally:
        other.close()


async def _autocheckpoint(db: Database) -> int:
    async with db.sessions() as session:
        return int((await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one())


async def test_wal_checkpoints_run_in_a_thread_not_in_a_commit(tmp_path: Path) -> None:
    path = str(tmp_path / "wal.db")
    db = Database(f"sqlite:///{path}")
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE blobs (data BLOB)"))
        assert await _autocheckpoint(db) == DEFAULT_AUTOCHECKPOINT_PAGES
        await db.start_checkpointer()
        # The commits themselves now checkpoint only far past what this test writes.
        assert await _autocheckpoint(db) == BACKSTOP_PAGES
        for _ in range(300):  # ~1,500 pages, a tenth of the backstop
            async with db.transaction() as session:
                await session.execute(
                    text("INSERT INTO blobs VALUES (:data)"), {"data": b"x" * 20_000}
                )
        # Yet the database file receives the rows: the thread copies them there.
        deadline = asyncio.get_running_loop().time() + 30
        copied = 0
        while copied < 300 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            copied = _rows_in_main_file(path, tmp_path / "copy.db")
        assert copied == 300
        await db.stop_checkpointer()
        assert await _autocheckpoint(db) == DEFAULT_AUTOCHECKPOINT_PAGES
    finally:
        await db.dispose()


async def test_rows_written_through_the_driver_are_stored_as_sqlalchemy_stores_them(
    database_url: str,
) -> None:
    """``Database.write_buffered`` bypasses SQLAlchemy's execution (``sqlite_rows`` on
    SQLite, ``pg_rows`` on PostgreSQL): the same rows through a Core INSERT must be stored
    the same, defaults included."""
    db = Database(database_url)
    moment = datetime(2026, 12, 7, 5, 0, 1, 234_567, tzinfo=UTC)

    def decision(rows: RowBuffer, decision_id: str) -> None:
        record_decision(
            rows,
            event_row={
                "kind": "transfer",
                "customer_id": "c-1",
                "occurred_at": moment,
                "amount": 1_500_000,
                "event_id": "evt-1",
                "payee_account": "110-123-456789",
            },
            decision="review",
            score=71,
            reasons=[{"code": "new_payee", "ko": "새 수취인", "en": "new payee"}],
            rule_hits=[{"name": "r", "version": 2, "decision": "review"}],
            model_version="v1",
            features={"payee.is_new": True, "amount_ratio": 3.25, "hours_since": None},
            now=moment,
            decision_id=decision_id,
        )

    try:
        through_driver, through_core = RowBuffer(), RowBuffer()
        decision(through_driver, "rsk-a")
        decision(through_core, "rsk-b")
        await db.write_buffered(through_driver)
        await write_through_core(db, through_core)
    finally:
        await db.dispose()

    a, b = stored_rows(database_url, "risk_decisions", "rsk-a", "rsk-b")
    events = [
        tuple(row.values())
        for row in query_rows(
            database_url,
            "SELECT topic, published_at, attempts, next_attempt_at, dead_at,"
            " CAST(payload AS TEXT) AS payload FROM outbox_events ORDER BY seq",
        )
    ]
    assert a.pop("id") != b.pop("id") and a == b  # only the ids differ
    assert len(events) == 2
    first, second = events
    assert first[:5] == second[:5] == ("risk.decided", None, 0, None, None)  # defaults too
    assert str(first[5]).replace("rsk-a", "rsk-b") == second[5]


async def test_payment_writes_through_the_driver_store_what_a_session_stores(
    database_url: str,
) -> None:
    """``Database.statements`` runs the payment path's Core statements straight through the
    driver (``sqlite_rows.DirectTransaction`` on SQLite, ``pg_rows.BatchedTransaction`` on
    PostgreSQL): the same INSERT and conditional UPDATE through a session must store the
    same values (defaults and ``onupdate`` included), count the same rows, fail the same way
    on a taken key, and roll back on an error."""
    db = Database(database_url)
    moment = datetime(2026, 12, 7, 5, 0, 1, 234_567, tzinfo=UTC)

    async def write_both(work: Callable[[Statements, str], Awaitable[object]]) -> list[object]:
        async with db.statements() as direct:
            assert isinstance(direct, DirectTransaction | BatchedTransaction)
            first = await work(direct, "pay-a")
        async with db.transaction() as session:
            second = await work(session, "pay-b")
        return [first, second]

    async def approve(writes: Statements, payment_id: str) -> bool:
        approved = new_payment(payment_id, moment)
        approved.status, approved.approval_code = "approved", "A1"
        approved.error_params = {"ends_at": moment.isoformat()}
        return await repository.update_payment(writes, approved, "authorizing")

    try:
        async with db.transaction() as session:
            session.add(Merchant(id="mer-1", name="shop"))
        await write_both(
            lambda writes, i: repository.insert_payment(writes, new_payment(i, moment))
        )
        assert await write_both(approve) == [True, True]
        assert await write_both(approve) == [False, False]  # no longer "authorizing"
        claim = Claim("key-1", "hash")
        for _ in range(2):  # a taken key raises the same error on both paths
            with pytest.raises(KeyTaken):
                await write_both(
                    lambda writes, i: IdempotencyKeys(
                        db, ttl=timedelta(1), wait_seconds=0
                    ).insert_claim(writes, "mer-1", claim, i, moment)
                )
        with pytest.raises(RuntimeError):  # an error rolls the direct transaction back
            async with db.statements() as direct:
                await repository.insert_payment(direct, new_payment("pay-c", moment))
                raise RuntimeError("the caller failed")
    finally:
        await db.dispose()

    row_a, row_b = stored_rows(database_url, "payments", "pay-a", "pay-b")
    assert stored_rows(database_url, "payments", "pay-c") == [{}]  # rolled back
    for row in (row_a, row_b):
        assert row.pop("id") in ("pay-a", "pay-b")
        assert str(row.pop("updated_at")) > "2026-12-07 05:00:01"  # onupdate: when written
    assert row_a == row_b and row_a["status"] == "approved" and row_a["approval_code"] == "A1"


async def test_an_update_of_the_changed_columns_stores_what_a_full_update_stores(
    database_url: str,
) -> None:
    """The payment path's later writes set only the columns changed since the last one
    (``repository.stored_state``): the row must end up as a write of every column leaves
    it, a list changed in place included."""
    db = Database(database_url)
    moment = datetime(2026, 12, 7, 5, 0, 1, 234_567, tzinfo=UTC)
    try:
        async with db.transaction() as session:
            session.add(Merchant(id="mer-1", name="shop"))
        payments = {"pay-full": new_payment("pay-full", moment)}
        payments["pay-changed"] = new_payment("pay-changed", moment)
        stored = {}
        for payment_id, payment in payments.items():
            async with db.statements() as writes:
                await repository.insert_payment(writes, payment)
            stored[payment_id] = repository.stored_state(payment)
        for payment_id, payment in payments.items():
            payment.status, payment.approval_code = "approved", "A1"
            payment.internal_flags.append("lost_card")  # in place: the snapshot must see it
            payment.risk_reasons = ["새 기기", "야간"]
            async with db.statements() as writes:
                written = await repository.update_payment(
                    writes,
                    payment,
                    "authorizing",
                    stored=stored[payment_id] if payment_id == "pay-changed" else None,
                )
            assert written
    finally:
        await db.dispose()

    full, changed = stored_rows(database_url, "payments", "pay-full", "pay-changed")
    for row in (full, changed):
        row.pop("id"), row.pop("updated_at")
    assert changed == full
    assert changed["status"] == "approved" and "lost_card" in str(changed["internal_flags"])


def test_a_payment_draft_has_the_payment_rows_columns_and_reads_unset_ones_as_none() -> None:
    """The create path's plain payment (``payments.draft``) stands for the mapped row: the
    same attribute names, and what was never set reads None, as on a new mapped object."""
    from typing import get_type_hints

    from haetae.payments.draft import PaymentDraft, set_columns
    from haetae.payments.models import Payment

    columns = {column.key for column in Payment.__table__.columns}
    assert set(get_type_hints(PaymentDraft)) == columns
    moment = datetime(2026, 12, 7, 5, 0, 1, tzinfo=UTC)
    draft = PaymentDraft(
        id="pay-1",
        merchant_id="mer-1",
        order_id="o-1",
        customer_id="c-1",
        amount=1_000,
        currency="KRW",
        status="pending",
        locale="ko",
        device_id=None,
        ip=None,
        created_at=moment,
    )
    mapped = Payment(**set_columns(draft))
    for name in columns:
        assert getattr(draft, name) == getattr(mapped, name), name
    assert set_columns(draft) == set_columns(mapped)
