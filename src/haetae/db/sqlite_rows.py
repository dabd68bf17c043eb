"""Core INSERT and UPDATE statements run straight through the sqlite3 driver, in a
``DirectTransaction`` (``Database.statements``): the payment path's writes and the fraud
engine's group commit (buffered rows, ``Database.write_buffered``) on the embedded default;
and constant SELECTs read the same way (``Database.select_direct``: the outbox relay's).

Why by hand: through SQLAlchemy's asyncio layer a one-decision transaction (connection,
BEGIN, two INSERTs, COMMIT) measured about 1.1 ms of CPU on our 2-core machine, of which
SQLite's own work was about 0.15 ms; the rest is the asyncio layer's greenlet hand-offs and
per-statement bookkeeping. For payments, the ORM session and Core around two short
transactions were 45% of a payment's CPU (bench/RESULTS.md). Nothing is given up for it:
each statement is compiled by SQLAlchemy's own compiler with the execution's keys (as
``Connection.execute`` compiles it), every value goes through its column type's own bind
processor (JSON, UTC datetimes), and Python-side defaults and ``onupdate`` values are applied
as Core applies them, so the SQL and the stored bytes are exactly SQLAlchemy's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Select, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.schema import ColumnDefault

from haetae.db.buffered import RowBuffer

Part = Callable[[dict[str, Any]], Any]  # a row's value for one placeholder


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    parts: tuple[Part, ...]

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(part(row) for part in self.parts)


def _python_default(default: Any) -> Callable[[], Any] | None:
    """A column's Python-side default (or ``onupdate``) as Core computes it for a row."""
    if not isinstance(default, ColumnDefault):
        return None  # none, or the database's own (a sequence, autoincrement)
    if default.is_callable:
        make = default.arg
        return lambda: make(None)  # SQLAlchemy wraps callables to take an execution context
    value = default.arg
    return lambda: value


def _source(compiled: SQLCompiler, name: str, keys: tuple[str, ...]) -> Part:
    """Where a placeholder's value comes from: the row, a column default, or a literal."""
    if name in keys:
        return itemgetter(name)
    defaults: dict[str, Any] = {c.key: c.onupdate for c in compiled.update_prefetch}
    defaults.update({c.key: c.default for c in compiled.insert_prefetch})
    if name in defaults:
        default = _python_default(defaults[name])
        assert default is not None, f"no Python-side default for {name}"
        return lambda row: default()
    value = compiled.binds[name].effective_value  # a literal of the statement itself
    return lambda row: value


def _part(compiled: SQLCompiler, dialect: Dialect, name: str, keys: tuple[str, ...]) -> Part:
    get = _source(compiled, name, keys)
    process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return get
    return lambda row: process(get(row))


# Statements are module constants; the cache keeps each one alive, so its id stays its own.
_CACHE: dict[tuple[int, int, tuple[str, ...]], tuple[ClauseElement, _Prepared]] = {}
_INSERTS: dict[Table, ClauseElement] = {}


def prepare(dialect: Dialect, statement: ClauseElement, keys: tuple[str, ...]) -> _Prepared:
    """``statement`` compiled for rows with ``keys``, and how to bind a row's values."""
    cached = _CACHE.get((id(dialect), id(statement), keys))
    if cached is not None:
        return cached[1]
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
    parts = tuple(_part(compiled, dialect, name, keys) for name in compiled.positiontup)
    prepared = _Prepared(compiled.string, parts)
    _CACHE[(id(dialect), id(statement), keys)] = (statement, prepared)
    return prepared


def prepared_inserts(
    dialect: Dialect, buffered: dict[Table, list[dict[str, Any]]]
) -> Iterator[tuple[_Prepared, list[dict[str, Any]]]]:
    """Per table and set of keys, the table's INSERT prepared for rows with those keys (the
    columns they leave out get their Python-side defaults), and those rows in order."""
    for table, rows in buffered.items():
        if not rows:
            continue
        statement = _INSERTS.get(table)
        if statement is None:
            statement = _INSERTS[table] = insert(table)
        by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:  # one writer's rows share their keys; rows of several may not
            by_keys.setdefault(tuple(row), []).append(row)
        for keys, same in by_keys.items():
            yield prepare(dialect, statement, keys), same


def insert_rows(
    sqlite: sqlite3.Connection, dialect: Dialect, buffered: dict[Table, list[dict[str, Any]]]
) -> None:
    """One ``executemany`` INSERT per table, in the caller's transaction."""
    for prepared, rows in prepared_inserts(dialect, buffered):
        sqlite.executemany(prepared.sql, [prepared.values(row) for row in rows])


@dataclass(frozen=True, slots=True)
class _PreparedSelect:
    sql: str
    params: tuple[Any, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def rows(self, sqlite: sqlite3.Connection) -> list[tuple[Any, ...]]:
        raw = sqlite.execute(self.sql, self.params).fetchall()
        if not any(self.processors):
            return raw
        processors = self.processors
        return [
            tuple(
                value if p is None else p(value) for p, value in zip(processors, row, strict=True)
            )
            for row in raw
        ]


_SELECTS: dict[tuple[int, int], tuple[Select[Any], _PreparedSelect]] = {}


def prepare_select(dialect: Dialect, statement: Select[Any]) -> _PreparedSelect:
    """A constant SELECT compiled once, its bound values fixed, and its columns' result
    processors (JSON, UTC datetimes): its rows come out as SQLAlchemy would give them."""
    cached = _SELECTS.get((id(dialect), id(statement)))
    if cached is not None:
        return cached[1]
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler) and compiled.positiontup is not None
    values = compiled.construct_params()
    processors = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.selected_columns
    )
    prepared = _PreparedSelect(
        compiled.string, tuple(values[name] for name in compiled.positiontup), processors
    )
    _SELECTS[(id(dialect), id(statement))] = (statement, prepared)
    return prepared


def sqlite_of(driver_connection: Any) -> sqlite3.Connection:
    """The sqlite3 connection of a pooled one (the inline dialect wraps it)."""
    assert driver_connection is not None, "a checked-out connection"
    sqlite: sqlite3.Connection = getattr(driver_connection, "raw", driver_connection)
    return sqlite


class DirectTransaction(RowBuffer):
    """A write block on the raw sqlite3 connection, with the part of ``AsyncSession`` the
    payment path uses: ``execute`` of Core INSERT/UPDATE statements (the result has
    ``rowcount``) and buffered rows (``db.buffered``: outbox events), written when the block
    ends. Opened, and committed with the other blocks of its turn of the event loop, by
    ``Database.statements`` (``sqlite_group``)."""

    def __init__(self, sqlite: sqlite3.Connection, dialect: Dialect) -> None:
        super().__init__()
        self._sqlite = sqlite
        self._dialect = dialect

    async def execute(self, statement: ClauseElement, params: dict[str, Any]) -> sqlite3.Cursor:
        prepared = prepare(self._dialect, statement, tuple(params))
        values = prepared.values(params)
        try:
            return self._sqlite.execute(prepared.sql, values)
        except sqlite3.IntegrityError as error:  # as SQLAlchemy would raise it
            raise IntegrityError(prepared.sql, values, error) from error
