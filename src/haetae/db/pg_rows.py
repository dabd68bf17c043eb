"""Core INSERT and UPDATE statements straight through psycopg, a transaction's statements
sent together: the payment path's writes and the fraud engine's group commit on
PostgreSQL (``Database.statements``), as ``sqlite_rows`` does on SQLite.

Why by hand: through an ORM session, a payment on PostgreSQL cost about 4 ms of the API
process's CPU, most of it SQLAlchemy's execution and psycopg waiting on one round trip per
statement, ``BEGIN`` and ``COMMIT`` included (about ten per payment; bench/RESULTS.md).
psycopg's pipeline mode sends statements without waiting for each answer, but it still
waits for its own ``BEGIN``, and SQLAlchemy's psycopg adapter reads every statement's
result right after sending it, so neither gives a transaction in fewer round trips. Here
the connection runs in autocommit mode inside a pipeline and the transaction is spelled out:
``BEGIN`` goes with the first statement, a statement whose answer is needed (a conditional
UPDATE's row count, an INSERT that may meet a unique key) waits for it, the others are only
queued (``queue``), and the buffered rows go with the ``COMMIT``. A payment's two
transactions take two round trips each instead of four and five.

The statements and values are SQLAlchemy's own, as in ``sqlite_rows``: compiled by its
compiler for the execution's keys (positionally, ``%s``), each value through its column
type's bind processor, Python-side defaults applied.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Protocol

import psycopg
from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ClauseElement

from haetae.db.buffered import RowBuffer
from haetae.db.sqlite_rows import prepare


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


_INSERTS: dict[Table, ClauseElement] = {}


class PipelinedTransaction(RowBuffer):
    """A write transaction on the pool's psycopg connection, with the part of
    ``AsyncSession`` the payment path uses (``execute`` with a ``rowcount``, buffered rows)
    and :meth:`queue` for statements whose answer nobody reads. Opened and ended by
    ``Database.statements``."""

    def __init__(
        self,
        connection: psycopg.AsyncConnection[Any],
        pipeline: psycopg.AsyncPipeline,
        dialect: Dialect,
    ) -> None:
        super().__init__()
        self._connection = connection
        self._pipeline = pipeline
        self._dialect = dialect
        self._cursor = connection.cursor()

    @property
    def backend_pid(self) -> int:
        """The PostgreSQL server process this transaction runs in (diagnostics, tests)."""
        return self._connection.info.backend_pid

    async def begin(self) -> None:
        await self._cursor.execute("BEGIN")  # queued: sent with the first statement

    async def queue(self, statement: ClauseElement, params: dict[str, Any]) -> None:
        """Send ``statement`` with the next one that waits; a failure surfaces there (at
        the latest at the commit), and the transaction rolls back."""
        prepared = prepare(self._dialect, statement, tuple(params))
        await self._cursor.execute(prepared.sql, prepared.values(params))

    async def execute(self, statement: ClauseElement, params: dict[str, Any]) -> Rowcount:
        """Run ``statement`` (with whatever was queued) and wait for its answer."""
        prepared = prepare(self._dialect, statement, tuple(params))
        values = prepared.values(params)
        cursor = self._connection.cursor()
        try:
            await cursor.execute(prepared.sql, values)
            await self._pipeline.sync()
        except psycopg.IntegrityError as error:  # as SQLAlchemy would raise it
            raise IntegrityError(prepared.sql, values, error) from error
        return cursor

    async def commit(self) -> None:
        for table, rows in self.take().items():
            if not rows:
                continue
            statement = _INSERTS.get(table)
            if statement is None:
                statement = _INSERTS[table] = insert(table)
            prepared = prepare(self._dialect, statement, tuple(rows[0]))
            await self._cursor.executemany(prepared.sql, [prepared.values(row) for row in rows])
        await self._cursor.execute("COMMIT")
        await self._pipeline.sync()

    async def rollback(self) -> None:
        self.take()
        # Whatever was queued, and out of an aborted state; its failure is the one the caller
        # is already handling.
        with contextlib.suppress(psycopg.Error):
            await self._pipeline.sync()
        await self._cursor.execute("ROLLBACK")
        await self._pipeline.sync()
