"""SQLite for SQLAlchemy's asyncio layer, run inline on the event loop.

Why hand-written: aiosqlite hands every statement to a thread of its own. Measured here
(bench/RESULTS.md) that costs ~1.1 ms of CPU per short transaction against ~0.2 ms for the
same work done inline, and it was most of a payment's cost. SQLite statements take
microseconds and, with the single connection the embedded default uses, the only wait left is
for another process holding the file lock, which the busy timeout bounds. So this dialect is
the standard library's ``sqlite3`` (SQLAlchemy's pysqlite dialect) marked as async: the
asyncio layer's greenlet runs it directly. SQLAlchemy insists that an async driver awaits at
least once per statement, so each execute awaits a coroutine that returns at once (two
greenlet switches, no thread, no trip through the event loop).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool
from sqlalchemy.util.concurrency import await_

DRIVER = "haetae_inline"


async def _nothing() -> None:
    return None


class _InlineCursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, *args: Any) -> _InlineCursor:
        await_(_nothing())
        self._cursor.execute(*args)
        return self

    def executemany(self, *args: Any) -> _InlineCursor:
        await_(_nothing())
        self._cursor.executemany(*args)
        return self

    async def _async_soft_close(self) -> None:
        """Called by the asyncio result layer; rows are already in the cursor."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _InlineConnection:
    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        object.__setattr__(self, "_connection", connection)

    @property
    def raw(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for work run whole in one go (``sqlite_rows``)."""
        return self._connection

    def cursor(self) -> _InlineCursor:
        return _InlineCursor(self._connection.cursor())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)


class SQLiteDialectInline(SQLiteDialect_pysqlite):
    is_async = True
    supports_statement_cache = True

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        connection: Any = super().connect(*args, **kwargs)
        return _InlineConnection(connection)

    @classmethod
    def get_pool_class(cls, url: URL) -> type[Pool]:
        return AsyncAdaptedQueuePool


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialectInline")
