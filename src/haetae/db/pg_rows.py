"""Core INSERT and UPDATE statements straight through psycopg, a transaction's statements
sent together: the payment path's writes and the fraud engine's group commit on
PostgreSQL (``Database.statements``), as ``sqlite_rows`` does on SQLite.

Why by hand: through an ORM session, a payment on PostgreSQL cost about 4 ms of the API
process's CPU, most of it SQLAlchemy's execution and psycopg waiting on one round trip per
statement, ``BEGIN`` and ``COMMIT`` included (about ten per payment; bench/RESULTS.md).
psycopg's pipeline mode does not help enough: it waits for its own ``BEGIN``, and it sends
and polls the socket once per statement. Here the statements are bound on the client
(psycopg's own adapters, ``ClientCursor.mogrify``) and sent as one simple query, several
statements separated by semicolons, on a connection in autocommit with the transaction
spelled out: ``BEGIN`` goes with the first statement, a statement whose answer is needed (a
conditional UPDATE's row count, an INSERT that may meet a unique key) is sent with what was
queued before it and waited for, the others are only queued (:meth:`queue`), and the
buffered rows go with the ``COMMIT``. A payment's transactions take at most two round trips
each, a group commit one.

The statements and values are SQLAlchemy's own, as in ``sqlite_rows``: compiled by its
compiler for the execution's keys (positionally, ``%s``), each value through its column
type's bind processor, Python-side defaults applied.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

import psycopg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ClauseElement

from haetae.db.buffered import RowBuffer
from haetae.db.sqlite_rows import prepare, prepared_inserts


class Rowcount(Protocol):
    @property
    def rowcount(self) -> int: ...


def positional_dialect(dialect: Dialect) -> Dialect:
    """``dialect`` compiling ``%s`` placeholders (psycopg takes both), so that statements
    are prepared as ``sqlite_rows`` prepares them: values in placeholder order."""
    positional = copy.copy(dialect)
    positional.paramstyle = "format"
    positional.positional = True
    return positional


class _Answer:
    __slots__ = ("rowcount",)

    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount


class BatchedTransaction(RowBuffer):
    """A write transaction on the pool's psycopg connection, with the part of
    ``AsyncSession`` the payment path uses (``execute`` with a ``rowcount``, buffered rows)
    and :meth:`queue` for statements whose answer nobody reads. Opened and ended by
    ``Database.statements``."""

    def __init__(self, connection: psycopg.AsyncConnection[Any], dialect: Dialect) -> None:
        super().__init__()
        self._connection = connection
        self._cursor = psycopg.AsyncClientCursor(connection)
        self._dialect = dialect
        self._queued: list[str] = ["BEGIN"]
        self._begun = False  # whether the BEGIN has left

    @property
    def backend_pid(self) -> int:
        """The PostgreSQL server process this transaction runs in (diagnostics, tests)."""
        return self._connection.info.backend_pid

    def _bound(self, statement: ClauseElement, params: dict[str, Any]) -> str:
        prepared = prepare(self._dialect, statement, tuple(params))
        return self._cursor.mogrify(prepared.sql, prepared.values(params))

    async def queue(self, statement: ClauseElement, params: dict[str, Any]) -> None:
        """Send ``statement`` with the next one that waits; a failure surfaces there (at
        the latest at the commit), and the transaction rolls back."""
        self._queued.append(self._bound(statement, params))

    async def execute(self, statement: ClauseElement, params: dict[str, Any]) -> Rowcount:
        """Run ``statement`` (after whatever was queued) and wait for its answer."""
        sql = self._bound(statement, params)
        self._queued.append(sql)
        try:
            await self._send()
        except psycopg.IntegrityError as error:  # as SQLAlchemy would raise it
            raise IntegrityError(sql, params, error) from error
        while self._cursor.nextset():  # the answer of the last statement sent
            pass
        return _Answer(self._cursor.rowcount)

    async def commit(self) -> None:
        for prepared, rows in prepared_inserts(self._dialect, self.take()):
            self._queued += [self._cursor.mogrify(prepared.sql, prepared.values(r)) for r in rows]
        self._queued.append("COMMIT")
        await self._send()

    async def rollback(self) -> None:
        """End the transaction without its queued statements (nothing to send if none had
        left yet)."""
        self.take()
        self._queued = []
        if self._begun:
            self._queued.append("ROLLBACK")
            await self._send()

    async def _send(self) -> None:
        batch, self._queued = self._queued, []
        self._begun = True
        await self._cursor.execute("; ".join(batch))
