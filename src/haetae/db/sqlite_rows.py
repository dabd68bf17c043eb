"""Buffered rows (``db.buffered``) written straight through the sqlite3 driver, in one
transaction of their own: the fraud engine's group commit on the embedded default.

Why by hand: a one-decision transaction through SQLAlchemy's asyncio Core (connection,
BEGIN, two INSERTs, COMMIT) measured about 1.1 ms of CPU on our 2-core machine, of which
SQLite's own work was about 0.15 ms; the rest is the asyncio layer's greenlet hand-offs and
per-statement bookkeeping. One decision at a time, that was most of a decision's latency
(bench/RESULTS.md, fraud detection). Nothing is given up for it: the statement's text comes
from the dialect's identifier quoting, and every value goes through its column type's own
bind processor (JSON, UTC datetimes), so the stored bytes are exactly what SQLAlchemy writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.schema import ColumnDefault


@dataclass(frozen=True, slots=True)
class _Insert:
    sql: str
    parts: tuple[Callable[[dict[str, Any]], Any], ...]  # a row's value for each placeholder

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(part(row) for part in self.parts)


def _python_default(column: Column[Any]) -> Callable[[], Any] | None:
    """A column's Python-side default as Core applies it to a row that leaves it out."""
    default = column.default
    if not isinstance(default, ColumnDefault):
        return None  # none, or the database's own (a sequence, autoincrement)
    if default.is_callable:
        make = default.arg
        return lambda: make(None)  # SQLAlchemy wraps callables to take an execution context
    value = default.arg
    return lambda: value


def _part(dialect: Dialect, column: Column[Any], given: bool) -> Callable[[dict[str, Any]], Any]:
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    key = column.key
    if given:
        if process is None:
            return lambda row: row[key]
        return lambda row: process(row[key])
    default = _python_default(column)
    assert default is not None
    if process is None:
        return lambda row: default()
    return lambda row: process(default())


_CACHE: dict[tuple[int, Table, tuple[str, ...]], _Insert] = {}


def _insert(dialect: Dialect, table: Table, keys: tuple[str, ...]) -> _Insert:
    cached = _CACHE.get((id(dialect), table, keys))
    if cached is not None:
        return cached
    # Columns the rows leave out get their Python-side default, as a Core INSERT would.
    columns = [table.c[key] for key in keys] + [
        column
        for column in table.columns
        if column.key not in keys and _python_default(column) is not None
    ]
    compiled = (
        insert(table).values({c.key: bindparam(c.key) for c in columns}).compile(dialect=dialect)
    )
    by_key = {c.key: c for c in columns}
    order = compiled.positiontup or []
    parts = tuple(_part(dialect, by_key[name], name in keys) for name in order)
    made = _CACHE[(id(dialect), table, keys)] = _Insert(str(compiled), parts)
    return made


def write(connection: Connection, buffered: dict[Table, list[dict[str, Any]]]) -> None:
    """Insert ``buffered`` (rows of one table share their keys) and commit; for
    ``AsyncConnection.run_sync`` on a connection outside any transaction."""
    driver = connection.connection.driver_connection
    assert driver is not None, "a checked-out connection"
    sqlite: sqlite3.Connection = getattr(driver, "raw", driver)  # the inline dialect's wrapper
    dialect = connection.dialect
    batches: Sequence[tuple[_Insert, list[tuple[Any, ...]]]] = [
        (statement, [statement.values(row) for row in rows])
        for table, rows in buffered.items()
        if rows
        for statement in (_insert(dialect, table, tuple(rows[0])),)
    ]
    sqlite.execute("BEGIN IMMEDIATE")
    try:
        for statement, values in batches:
            sqlite.executemany(statement.sql, values)
        sqlite.execute("COMMIT")
    except BaseException:
        if sqlite.in_transaction:
            sqlite.execute("ROLLBACK")
        raise
