"""Group commit on SQLite (``db.sqlite_group``): the write blocks of one turn of the event
loop share a transaction, and each still behaves as a transaction of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from haetae.bus.outbox import add_event
from haetae.config import Settings
from haetae.db.engine import Database
from haetae.db.migrate import upgrade
from haetae.db.sqlite_rows import sqlite_of
from haetae.merchants.models import Merchant
from haetae.payments import repository
from tests.helpers import new_payment

MOMENT = datetime(2026, 12, 7, 5, 0, 1, tzinfo=UTC)
# Foreign keys checked only at COMMIT: a way to make the shared commit fail.
_DEFER_FOREIGN_KEYS = text("PRAGMA defer_foreign_keys = ON")


@contextlib.asynccontextmanager
async def _database(path: Path, commit_delay: float = 0.0) -> AsyncIterator[Database]:
    url = f"sqlite:///{path}"
    upgrade(url)
    database = Database(url, commit_delay=commit_delay)
    async with database.transaction() as session:
        session.add(Merchant(id="mer-1", name="shop"))
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with _database(tmp_path / "group.db") as database:
        yield database


async def _statements_run(db: Database) -> list[str]:
    """Every statement the pool's one sqlite3 connection runs from now on, as SQLite sees
    it."""
    seen: list[str] = []
    pooled = await db.engine.raw_connection()
    try:
        sqlite_of(pooled.driver_connection).set_trace_callback(seen.append)
    finally:
        pooled.close()
    return seen


def _stored_ids(db: Database) -> set[str]:
    """Payment ids visible to another connection: what has been committed."""
    other = sqlite3.connect(str(db.engine.url.database))
    try:
        return {row[0] for row in other.execute("SELECT id FROM payments")}
    finally:
        other.close()


def _stored_events(db: Database) -> list[str]:
    """The payment ids of the committed outbox events, in the order they were written."""
    other = sqlite3.connect(str(db.engine.url.database))
    try:
        rows = other.execute("SELECT payload FROM outbox_events ORDER BY seq").fetchall()
        return [json.loads(row[0])["payment_id"] for row in rows]
    finally:
        other.close()


async def _turns(count: int) -> None:
    """Let the event loop run ``count`` turns."""
    for _ in range(count):
        await asyncio.sleep(0)


async def _insert(db: Database, payment_id: str) -> None:
    async with db.statements() as writes:
        await repository.insert_payment(writes, new_payment(payment_id, MOMENT))
        add_event(writes, "payment.approved", {"payment_id": payment_id})
    # Leaving the block means committed: another connection sees the row at once.
    assert payment_id in _stored_ids(db)


async def test_blocks_of_one_turn_share_one_commit(db: Database) -> None:
    seen = await _statements_run(db)
    await asyncio.gather(*(_insert(db, f"pay-{i}") for i in range(8)))
    assert _stored_ids(db) == {f"pay-{i}" for i in range(8)}
    assert seen.count("BEGIN IMMEDIATE") == seen.count("COMMIT") == 1
    assert seen.count("SAVEPOINT block") == seen.count("RELEASE block") == 8
    # The blocks' buffered rows (their events) go in together, after the last savepoint.
    assert _stored_events(db) == [f"pay-{i}" for i in range(8)]
    inserts = [i for i, sql in enumerate(seen) if sql.startswith("INSERT INTO outbox_events")]
    last_release = max(i for i, sql in enumerate(seen) if sql == "RELEASE block")
    assert len(inserts) == 8 and min(inserts) > last_release


async def test_a_failing_block_undoes_only_its_own_statements(db: Database) -> None:
    async def failing() -> None:
        async with db.statements() as writes:
            await repository.insert_payment(writes, new_payment("pay-bad", MOMENT))
            add_event(writes, "payment.failed", {"payment_id": "pay-bad"})
            raise RuntimeError("the caller failed")

    async def taken_id() -> None:
        async with db.statements() as writes:
            await repository.insert_payment(writes, new_payment("pay-other", MOMENT))
            await repository.insert_payment(writes, new_payment("pay-1", MOMENT))  # taken

    seen = await _statements_run(db)
    results = await asyncio.gather(
        _insert(db, "pay-1"), failing(), taken_id(), _insert(db, "pay-2"), return_exceptions=True
    )
    assert results[0] is None and results[3] is None
    assert isinstance(results[1], RuntimeError)
    assert isinstance(results[2], IntegrityError)
    assert _stored_ids(db) == {"pay-1", "pay-2"}
    assert _stored_events(db) == ["pay-1", "pay-2"]  # the failed block's event is dropped
    assert seen.count("COMMIT") == 1  # the failures did not end the shared transaction
    assert seen.count("ROLLBACK TO block") == 2


async def test_a_failed_commit_fails_every_block_in_it_and_the_next_turn_starts_afresh(
    db: Database,
) -> None:
    """A foreign key checked only at COMMIT (deferred) fails the shared commit."""
    stranger = new_payment("pay-stranger", MOMENT)
    stranger.merchant_id = "mer-unknown"

    async def deferred_violation() -> None:
        async with db.statements() as writes:
            await writes.execute(_DEFER_FOREIGN_KEYS, {})
            await repository.insert_payment(writes, stranger)

    results = await asyncio.gather(
        _insert(db, "pay-1"), deferred_violation(), _insert(db, "pay-2"), return_exceptions=True
    )
    assert all(isinstance(result, sqlite3.IntegrityError) for result in results), results
    assert _stored_ids(db) == set()
    await _insert(db, "pay-3")
    assert _stored_ids(db) == {"pay-3"}


async def test_a_block_that_waits_inside_is_not_joined_and_its_commit_waits_for_it(
    db: Database,
) -> None:
    inside, go_on = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def slow() -> None:
        async with db.statements() as writes:
            await repository.insert_payment(writes, new_payment("pay-slow", MOMENT))
            inside.set()
            await go_on.wait()  # a turn of the loop ends with the block still open
            order.append("slow block ends")
        order.append("slow committed")

    async def quick() -> None:
        await inside.wait()
        await _insert(db, "pay-quick")
        order.append("quick committed")

    seen = await _statements_run(db)
    tasks = [asyncio.create_task(slow()), asyncio.create_task(quick())]
    await inside.wait()
    await _turns(5)
    assert _stored_ids(db) == set()  # neither committed while the slow block is open
    go_on.set()
    await asyncio.gather(*tasks)
    assert order == ["slow block ends", "slow committed", "quick committed"]
    assert seen.count("COMMIT") == 2 and seen.count("SAVEPOINT block") == 2


async def test_the_relay_is_woken_once_per_commit_that_wrote_events(db: Database) -> None:
    woken: list[int] = []
    db.on_events_committed(lambda: woken.append(1))

    async def with_event(payment_id: str) -> None:
        async with db.statements() as writes:
            await repository.insert_payment(writes, new_payment(payment_id, MOMENT))
            writes.info["outbox_dirty"] = True

    async def without_event(payment_id: str) -> None:
        async with db.statements() as writes:
            await repository.insert_payment(writes, new_payment(payment_id, MOMENT))

    await asyncio.gather(with_event("pay-1"), with_event("pay-2"), without_event("pay-3"))
    assert woken == [1]
    await without_event("pay-4")  # no events: nobody is woken
    assert woken == [1]


@pytest.fixture
async def delayed_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A database whose groups, under load, stay open for a commit delay long enough that a
    test can see it: 60 s, so a block that waited for it would time the test out."""
    async with _database(tmp_path / "delayed.db", commit_delay=60.0) as database:
        yield database


async def test_a_lone_block_commits_on_the_next_turn_whatever_the_delay(
    delayed_db: Database,
) -> None:
    seen = await _statements_run(delayed_db)
    for payment_id in ("pay-1", "pay-2", "pay-3"):  # one at a time: no sign of load
        await asyncio.wait_for(_insert(delayed_db, payment_id), timeout=5)
    assert seen.count("COMMIT") == 3


async def test_after_a_group_of_several_the_next_stays_open_for_the_delay(tmp_path: Path) -> None:
    async with _database(tmp_path / "delayed.db", commit_delay=0.3) as db:
        seen = await _statements_run(db)
        await asyncio.gather(_insert(db, "pay-1"), _insert(db, "pay-2"))  # a sign of load
        assert seen.count("COMMIT") == 1
        first = asyncio.create_task(_insert(db, "pay-3"))
        await _turns(10)
        assert not first.done() and "pay-3" not in _stored_ids(db)  # open, waiting
        second = asyncio.create_task(_insert(db, "pay-4"))  # turns later: joins it
        await asyncio.gather(first, second)
        assert seen.count("COMMIT") == 2 and seen.count("BEGIN IMMEDIATE") == 2
        assert _stored_ids(db) == {"pay-1", "pay-2", "pay-3", "pay-4"}
        # That group held two blocks too, so the load is still on: the next one waits.
        third = asyncio.create_task(_insert(db, "pay-5"))
        await _turns(10)
        assert not third.done()
        await third


async def test_with_no_delay_every_group_commits_on_the_next_turn(db: Database) -> None:
    seen = await _statements_run(db)
    await asyncio.gather(_insert(db, "pay-1"), _insert(db, "pay-2"))
    alone = asyncio.create_task(_insert(db, "pay-3"))
    await _turns(10)
    assert alone.done() and "pay-3" in _stored_ids(db)
    assert seen.count("COMMIT") == 2


def test_the_commit_delay_is_a_setting_in_milliseconds_never_negative(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HAETAE_SQLITE_COMMIT_DELAY_MS", "5")
    assert Settings().sqlite_commit_delay_ms == 5.0
    monkeypatch.setenv("HAETAE_SQLITE_COMMIT_DELAY_MS", "-1")
    with pytest.raises(ValidationError, match="sqlite_commit_delay_ms"):
        Settings()
