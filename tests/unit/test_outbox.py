"""The transactional outbox: events exist only if their transaction commits, reach every
subscriber, survive a failing consumer, and are handled once per consumer."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from haetae.bus import Event, InProcessBus, OutboxRelay, add_event, consume_once
from haetae.bus.models import ConsumedEvent, OutboxEvent
from haetae.db.base import utcnow
from haetae.db.buffered import RowBuffer
from haetae.db.engine import Database
from haetae.db.migrate import upgrade
from haetae.db.sqlite_rows import sqlite_of
from haetae.notify.models import InboxItem
from haetae.notify.service import post_to_inbox
from haetae.risk.decisions.writer import GroupCommitWriter


async def test_rolled_back_work_publishes_nothing(database_url: str) -> None:
    db = Database(database_url)
    try:
        try:
            async with db.transaction() as session:
                add_event(session, "test.happened", {"n": 1})
                raise RuntimeError("fail after writing")
        except RuntimeError:
            pass
        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    finally:
        await db.dispose()


async def test_events_are_delivered_in_order_and_redelivered_after_a_failure(
    database_url: str,
) -> None:
    db = Database(database_url)
    bus = InProcessBus()
    now = [utcnow()]
    relay = OutboxRelay(db, bus, clock=lambda: now[0])
    seen: list[int] = []
    flaky_calls = 0

    async def steady(event: Event) -> None:
        async with db.transaction() as session:
            if await consume_once(session, "steady", event.id):
                seen.append(event.payload["n"])

    async def flaky(event: Event) -> None:
        nonlocal flaky_calls
        flaky_calls += 1
        if flaky_calls == 2:
            raise ConnectionError("consumer briefly down")

    bus.subscribe("test.*", "steady", steady)
    bus.subscribe("test.happened", "flaky", flaky)
    bus.subscribe("other.topic", "never", flaky)
    try:
        async with db.transaction() as session:
            for n in range(5):
                add_event(session, "test.happened", {"n": n})
        assert await relay.publish_pending() == 1  # stops at the failure to keep order
        assert await relay.drain() == 0  # the failed event waits out its pause; order kept
        now[0] += timedelta(seconds=3)
        assert await relay.drain() == 4  # the failed event is sent again, then the rest
        assert seen == [0, 1, 2, 3, 4]  # the steady consumer dropped the repeat
        async with db.sessions() as session:
            unpublished = await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
            consumed = await session.scalar(select(func.count()).select_from(ConsumedEvent))
        assert unpublished == 0 and consumed == 5
    finally:
        await db.dispose()


async def test_commit_wakes_the_running_relay(database_url: str) -> None:
    import asyncio

    db = Database(database_url)
    bus = InProcessBus()
    relay = OutboxRelay(db, bus, poll_seconds=60)  # only a wake-up can deliver in time
    db.on_events_committed(relay.wake)
    got = asyncio.Event()

    async def handler(event: Event) -> None:
        got.set()

    bus.subscribe("notification.*", "t", handler)
    relay.start()
    try:
        await asyncio.sleep(0.05)
        async with db.transaction() as session:
            await post_to_inbox(session, customer_id="c", kind="k", title="t", body="b")
        await asyncio.wait_for(got.wait(), timeout=2)
        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(InboxItem)) == 1
    finally:
        await relay.stop()
        await db.dispose()


async def test_an_event_no_consumer_can_take_is_dead_lettered(database_url: str) -> None:
    db = Database(database_url)
    bus = InProcessBus()
    now = [utcnow()]
    relay = OutboxRelay(db, bus, clock=lambda: now[0], max_attempts=3)
    delivered: list[str] = []

    async def picky(event: Event) -> None:
        if event.payload["poison"]:
            raise ValueError("cannot handle this one")
        delivered.append(event.id)

    bus.subscribe("test.*", "picky", picky)
    try:
        async with db.transaction() as session:
            poison = add_event(session, "test.happened", {"poison": True})
            fine = add_event(session, "test.happened", {"poison": False})
        for _ in range(3):
            await relay.drain()
            now[0] += timedelta(minutes=2)
        assert await relay.drain() == 1
        assert delivered == [fine]
        async with db.sessions() as session:
            row = (await session.scalars(select(OutboxEvent).where(OutboxEvent.id == poison))).one()
        assert row.dead_at is not None and row.published_at is None and row.attempts == 3
    finally:
        await db.dispose()


async def test_the_group_commit_writes_its_rows_in_one_transaction_and_wakes_the_relay(
    database_url: str,
) -> None:
    """The fraud engine's writer: buffered rows on a Core connection, no ORM session. Every
    caller returns once its rows are committed, the relay hears of the events at once, and
    a write that fails leaves only its own rows out."""
    import asyncio

    db = Database(database_url)
    bus = InProcessBus()
    relay = OutboxRelay(db, bus, poll_seconds=60)  # only a wake-up can deliver in time
    db.on_events_committed(relay.wake)
    delivered: list[int] = []
    all_in = asyncio.Event()

    async def handler(event: Event) -> None:
        delivered.append(int(event.payload["n"]))
        if len(delivered) == 20:
            all_in.set()

    bus.subscribe("writer.*", "t", handler)
    writer = GroupCommitWriter(db)
    relay.start()
    try:
        await asyncio.gather(
            *(
                writer.write(lambda rows, n=n: add_event(rows, "writer.wrote", {"n": n}))
                for n in range(20)
            )
        )
        await asyncio.wait_for(all_in.wait(), timeout=5)
        assert sorted(delivered) == list(range(20))

        def broken(rows: RowBuffer) -> None:
            add_event(rows, "writer.wrote", {"n": 99})
            raise ValueError("a bug in one write")

        # In the same transaction as a good write: only the broken one fails.
        results = await asyncio.gather(
            writer.write(broken),
            writer.write(lambda rows: add_event(rows, "writer.wrote", {"n": 20})),
            return_exceptions=True,
        )
        assert isinstance(results[0], ValueError) and results[1] is None
        async with db.sessions() as session:
            stored = (await session.scalars(select(OutboxEvent.payload))).all()
        assert sorted(p["n"] for p in stored) == list(range(21))  # nothing of the failed one
    finally:
        await relay.stop()
        await db.dispose()


async def test_the_relay_stops_when_it_is_cancelled_just_as_a_commit_wakes_it(
    database_url: str,
) -> None:
    """A stop that lands in the same turn of the loop as a wake-up must still stop the
    relay (Python 3.11's ``asyncio.wait_for`` swallowed such a cancellation when the
    awaited event had just fired, and the relay went on polling while its stop waited for
    it forever: a shutdown that hung)."""
    import asyncio

    db = Database(database_url)
    relay = OutboxRelay(db, InProcessBus(), poll_seconds=60, coalesce_seconds=0)
    relay.start()
    try:
        await asyncio.sleep(0.05)  # the relay waits for a wake-up
        relay.wake()
        await asyncio.wait_for(relay.stop(), timeout=5)  # cancelled before it runs again
    finally:
        await db.dispose()


async def test_a_round_on_sqlite_reads_and_marks_straight_through_the_driver(
    tmp_path: Path,
) -> None:
    """No session on SQLite: the batch is read by one statement outside any transaction, and
    marked in a block of the group commit; the events arrive as a session would read them.
    (PostgreSQL's round locks its batch in a session: the tests above run on both.)"""
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    db = Database(url)
    bus = InProcessBus()
    relay = OutboxRelay(db, bus)
    got: list[Event] = []

    async def take(event: Event) -> None:
        got.append(event)

    bus.subscribe("test.*", "taker", take)
    try:
        async with db.transaction() as session:
            first = add_event(session, "test.happened", {"n": 1, "items": ["a", "가"]})
            second = add_event(session, "test.happened", {"n": 2})
        pooled = await db.engine.raw_connection()
        seen: list[str] = []
        try:
            sqlite_of(pooled.driver_connection).set_trace_callback(seen.append)
        finally:
            pooled.close()
        assert await relay.publish_pending() == 2
        assert [(e.id, e.payload) for e in got] == [
            (first, {"n": 1, "items": ["a", "가"]}),
            (second, {"n": 2}),
        ]
        assert all(e.occurred_at.tzinfo is not None for e in got)
        assert seen[0].startswith("SELECT")  # read first, outside any transaction
        assert "BEGIN DEFERRED" not in seen  # no session
        marks = [i for i, sql in enumerate(seen) if sql.startswith("UPDATE outbox_events")]
        assert len(marks) == 2
        assert seen.index("SAVEPOINT block") < marks[0] < marks[-1] < seen.index("COMMIT")
        assert await relay.publish_pending() == 0  # marked: nothing is sent twice
        assert len(got) == 2
    finally:
        await db.dispose()
