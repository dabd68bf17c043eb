"""Group commit on SQLite: the write blocks (``Database.statements``) that run in one turn
of the event loop share one transaction, each inside a savepoint of its own; under load, so
do those of the next few milliseconds (the commit delay, below).

Why: on the embedded default every payment ran two short transactions of its own, and each
paid for ``BEGIN IMMEDIATE``, a ``COMMIT`` that appends every page it touched to the WAL,
and a checkout of the pool's one connection. Under load many payments write in the same
turn of the loop, and their rows land on the same few pages of each table and index: one
commit for all of them writes those pages once. No library does this for sqlite3 (SQLite's
own WAL has no group commit across transactions of one connection), so it is written here.

What a block still gets is what a transaction of its own gave it:
- its statements run at once (a taken Idempotency-Key raises in the block, as before);
- an error in the block rolls back its own statements only (``ROLLBACK TO`` its savepoint)
  and drops its buffered rows (outbox events, decisions);
- leaving the block returns only after the shared ``COMMIT``: nothing is answered, and no
  issuer is called, before the write is durable. A failed ``COMMIT`` fails every block in it.

The blocks' buffered rows are written together just before the commit, one ``executemany``
per table, outside any savepoint: inside one, SQLite first copies every page a block
changes to the savepoint's journal, and a block with its rows changed about twenty pages,
past the 64 KiB at which that journal moves from memory to a temporary file (a decision's
row cost 68 µs in the block, 39 µs with the journal in memory). The rows' ids are made
here, so none can collide; should their INSERT fail anyway, the commit fails for all.

The commit delay: a group commits on the next turn of the loop, which under load gathered only
2.6 blocks at 32 payments in flight, and a commit's fixed part (its pages appended to the WAL,
the rows' INSERTs prepared) then cost 115 µs per block. When the last group held more than one
block, a sign that others are on their way, the next one stays open for ``delay`` seconds
instead (PostgreSQL's ``commit_delay`` with ``commit_siblings``, in miniature). At 32 in
flight, 1 ms gathered 8.5 blocks at 48 µs each and 2 ms (the default) 12.7 at 37 µs; with
payments arriving at 1,000/s, 2 ms gathered 5.5 at 47 µs (bench/RESULTS.md). A block alone,
at low load, still commits on the next turn, so a quiet server answers as fast as before.

A block never waits inside itself on SQLite (its statements run inline), so blocks do not
interleave. Should one ever wait, the others do not join its transaction: they wait for its
commit and start the next one, and the commit waits for the block to end.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from haetae.db.buffered import RowBuffer
from haetae.db.sqlite_rows import DirectTransaction, insert_rows, sqlite_of


class _Group:
    """One shared write transaction on the pool's connection."""

    __slots__ = ("active", "blocks", "commit_due", "committed", "pooled", "rows", "sqlite")

    def __init__(self, pooled: Any, sqlite: sqlite3.Connection, committed: asyncio.Future[None]):
        self.pooled = pooled
        self.sqlite = sqlite
        self.committed = committed
        self.active = 0  # blocks inside it right now (0 or 1: blocks do not interleave)
        self.blocks = 0  # blocks it has held in all
        self.commit_due = False  # its time was up while a block was still inside
        self.rows = RowBuffer()  # the blocks' buffered rows, written just before the commit


class GroupCommit:
    """The SQLite side of ``Database.statements``."""

    def __init__(
        self, engine: AsyncEngine, events_committed: Callable[[], None], *, delay: float = 0.0
    ) -> None:
        self._engine = engine
        self._delay = delay  # seconds a group stays open under load (0: one turn, always)
        self._last_blocks = 0  # how many the last group committed held: a sign of load
        self._dialect = engine.dialect
        self._events_committed = events_committed
        self._group: _Group | None = None
        self._opening: asyncio.Future[None] | None = None

    def block(self) -> _Block:
        """A write block: ``async with`` it (``Database.statements``)."""
        return _Block(self)

    async def _join(self) -> _Group:
        while True:
            group = self._group  # None again as soon as its commit begins
            if group is not None:
                if group.active == 0:
                    return group
                await _settled(group.committed)  # a block inside it waits: take the next one
                continue
            if self._opening is not None:  # another block is getting the connection
                await _settled(self._opening)
                continue
            return await self._open()

    async def _open(self) -> _Group:
        loop = asyncio.get_running_loop()
        opening = self._opening = loop.create_future()
        try:
            pooled = await self._engine.raw_connection()
            try:
                sqlite = sqlite_of(pooled.driver_connection)
                sqlite.execute("BEGIN IMMEDIATE")
            except BaseException:
                pooled.close()
                raise
            group = self._group = _Group(pooled, sqlite, loop.create_future())
            if self._delay and self._last_blocks > 1:
                loop.call_later(self._delay, self._time_up, group)
            else:
                loop.call_soon(self._time_up, group)
            return group
        finally:
            self._opening = None
            opening.set_result(None)

    def _time_up(self, group: _Group) -> None:
        if group.active:
            group.commit_due = True  # committed when the block inside it ends
        else:
            self._commit(group)

    def _commit(self, group: _Group) -> None:
        self._group = None  # nobody joins from here on
        self._last_blocks = group.blocks
        try:
            insert_rows(group.sqlite, self._dialect, group.rows.take())
            group.sqlite.execute("COMMIT")
        except BaseException as error:
            try:
                if group.sqlite.in_transaction:
                    group.sqlite.execute("ROLLBACK")
            finally:  # the blocks hear of the failure even if the rollback fails too
                group.committed.set_exception(error)
            group.committed.exception()  # every block hears of it; none left unretrieved
        else:
            group.committed.set_result(None)
            if group.rows.info.get("outbox_dirty"):
                self._events_committed()
        finally:
            group.pooled.close()


class _Block:
    """One ``async with`` of :meth:`GroupCommit.block` (a class rather than a generator:
    it runs twice per payment)."""

    __slots__ = ("_commits", "_group", "_transaction")

    def __init__(self, commits: GroupCommit) -> None:
        self._commits = commits
        self._group: _Group | None = None
        self._transaction: DirectTransaction | None = None

    async def __aenter__(self) -> DirectTransaction:
        commits = self._commits
        group = self._group = await commits._join()
        transaction = self._transaction = DirectTransaction(group.sqlite, commits._dialect)
        group.sqlite.execute("SAVEPOINT block")
        group.active += 1
        group.blocks += 1
        return transaction

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> None:
        group, transaction = self._group, self._transaction
        assert group is not None and transaction is not None
        sqlite = group.sqlite
        try:
            if kind is None:
                try:
                    sqlite.execute("RELEASE block")
                except BaseException:
                    _undo(sqlite, transaction)
                    raise
                group.rows.absorb(transaction)
            else:
                _undo(sqlite, transaction)
        finally:
            group.active -= 1
            if group.commit_due and group.active == 0:
                self._commits._commit(group)
        if kind is None:
            await asyncio.shield(group.committed)


def _undo(sqlite: sqlite3.Connection, transaction: DirectTransaction) -> None:
    """Roll a block back to its savepoint and drop its buffered rows."""
    transaction.take()
    sqlite.execute("ROLLBACK TO block")
    sqlite.execute("RELEASE block")


async def _settled(future: asyncio.Future[None]) -> None:
    """Wait for ``future`` to finish, whatever its outcome (it is someone else's)."""
    await asyncio.wait([future])
