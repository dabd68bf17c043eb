"""Engines and transactions for SQLite (embedded default) and PostgreSQL (at scale)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Select, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn

from haetae.config import DEFAULT_MAX_OVERFLOW, DEFAULT_POOL_SIZE
from haetae.db import json_columns, pg_rows, sqlite_group, sqlite_inline, sqlite_rows
from haetae.db.buffered import RowBuffer
from haetae.db.checkpointer import BACKSTOP_PAGES, WalCheckpointer
from haetae.db.idle_ping import ping_when_idle

DEFAULT_AUTOCHECKPOINT_PAGES = 1000  # SQLite's own default


def async_url(url: str) -> str:
    """The driver we run the application with: SQLite inline (see ``sqlite_inline``) or
    psycopg 3 (async)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername=f"sqlite+{sqlite_inline.DRIVER}").render_as_string(
            hide_password=False
        )
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database: {parsed.get_backend_name()}")


def sync_url(url: str) -> str:
    """The driver Alembic migrates with: the standard library's sqlite3 or psycopg 3."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


_WRITER = "haetae_writer"

# What ``Database.statements`` yields: both execute Core statements and buffer rows.
Statements = AsyncSession | sqlite_rows.DirectTransaction | pg_rows.BatchedTransaction


async def queue(session: Statements, statement: Any, params: dict[str, Any]) -> None:
    """Run a write whose answer nobody reads. In PostgreSQL's batched transaction it goes
    with the next statement that waits, or the commit (``pg_rows``); elsewhere it runs now."""
    if isinstance(session, pg_rows.BatchedTransaction):
        await session.queue(statement, params)
    else:
        await session.execute(statement, params)


def _tune_sqlite(engine: AsyncEngine, autocheckpoint: Callable[[], int]) -> None:
    """WAL for concurrent readers, and BEGIN IMMEDIATE for writers (``Database.transaction``)
    so that two writers queue on the lock instead of failing with "database is locked" when
    a read transaction upgrades to write. Reads take a deferred transaction: a snapshot,
    without the write lock, so another process (the CLI, a second worker) is not held up."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # 64 MB of page cache instead of 2 MB: once an index outgrows the cache, every insert
        # into it reads pages back from disk (planning a million certificates' reminders
        # took about a third less time with it; bench/RESULTS.md).
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint())}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        writer = connection.get_execution_options().get(_WRITER, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN DEFERRED")


class Database:
    """One engine and its session factory; the unit of work is :meth:`transaction`."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = DEFAULT_POOL_SIZE,
        max_overflow: int = DEFAULT_MAX_OVERFLOW,
        commit_delay: float = 0.0,
    ) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        ensure_sqlite_dir(url)
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": json_columns.dumps,
            "json_deserializer": json_columns.loads,
        }
        if self.is_sqlite:
            # One connection: SQLite has one writer per file anyway, and tasks queue for it
            # in the pool instead of spinning in SQLite's busy handler (which measured a
            # p99 of 1.6 s under load with 15 connections, 0.4 s with one).
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=60)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
        self.engine = create_async_engine(async_url(url), **kwargs)
        if not self.is_sqlite:
            ping_when_idle(self.engine)  # instead of pool_pre_ping's ping at every checkout
        self._positional = pg_rows.positional_dialect(self.engine.dialect)  # pg_rows' statements
        self._checkpointer: WalCheckpointer | None = None
        if self.is_sqlite:
            _tune_sqlite(self.engine, self._autocheckpoint_pages)
        # A Session class of our own, so that commit hooks stay local to this Database.
        self._session_class: type[Session] = type("HaetaeSession", (Session,), {})
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self._session_class
        )
        self._events_committed: list[Callable[[], None]] = []
        self._group_commit = sqlite_group.GroupCommit(
            self.engine, self.events_committed, delay=commit_delay
        )

    def on_events_committed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each commit that wrote outbox events (wakes the relay)."""
        self._events_committed.append(callback)

        @event.listens_for(self._session_class, "after_commit")
        def _after_commit(session: Session) -> None:
            if session.info.pop("outbox_dirty", False):
                callback()

        @event.listens_for(self._session_class, "after_rollback")
        def _after_rollback(session: Session) -> None:
            session.info.pop("outbox_dirty", None)

    async def write_buffered(self, rows: RowBuffer) -> None:
        """Insert ``rows`` in a transaction of their own, and wake the relay if they hold
        events: straight through the driver (:meth:`statements`), on PostgreSQL in one round
        trip."""
        async with self.statements() as transaction:
            assert not isinstance(transaction, AsyncSession)
            transaction.absorb(rows)  # written, and the relay woken, at its commit

    def events_committed(self) -> None:
        """Say that a transaction written outside a session (``statements``) committed
        outbox events; session commits say so themselves."""
        for callback in self._events_committed:
            callback()

    def statements(self) -> AbstractAsyncContextManager[Statements]:
        """A write transaction for Core INSERT/UPDATE statements and buffered rows, where
        nothing is read back through the ORM: the payment path's writes. It runs straight
        through the driver (SQLAlchemy's session and Core were 45% of a payment's CPU on
        SQLite): on SQLite a ``sqlite_rows.DirectTransaction`` in a savepoint of the
        transaction that the blocks of one turn of the event loop share (``sqlite_group``;
        leaving the block waits for that commit), on PostgreSQL
        ``pg_rows.BatchedTransaction``, its statements sent together."""
        if self.is_sqlite:
            return self._group_commit.block()
        return self._batched()

    @asynccontextmanager
    async def _batched(self) -> AsyncIterator[pg_rows.BatchedTransaction]:
        """PostgreSQL's :meth:`statements`: the pool's psycopg connection in autocommit for
        one spelled-out transaction whose statements are sent together (``pg_rows``), then
        back as it was. A connection left in doubt (it broke, or its rollback failed) is not
        reused."""
        pooled = await self.engine.raw_connection()
        connection = pooled.driver_connection
        assert isinstance(connection, psycopg.AsyncConnection)
        in_doubt = True
        try:
            await connection.set_autocommit(True)
            transaction = pg_rows.BatchedTransaction(connection, self._positional)
            try:
                yield transaction
                await transaction.commit()
            except BaseException:
                await transaction.rollback()
                in_doubt = False
                raise
            in_doubt = False
        finally:
            try:
                if not in_doubt:
                    await connection.set_autocommit(False)
            except psycopg.Error:
                in_doubt = True
            # The pool's own work (a reset, a close) awaits through SQLAlchemy's greenlet.
            if in_doubt:
                await greenlet_spawn(pooled.invalidate)
            await greenlet_spawn(pooled.close)
        if transaction.info.pop("outbox_dirty", False):
            self.events_committed()

    async def select_direct(self, statement: Select[Any]) -> list[tuple[Any, ...]]:
        """SQLite only: the rows of a constant SELECT read on the pool's connection straight
        through the driver, outside any transaction (one statement reads one snapshot), each
        value through its column's result processor. For a query run many times a second
        where an ORM session's setup is most of the cost (the outbox relay's)."""
        assert self.is_sqlite, "select_direct is SQLite's"
        prepared = sqlite_rows.prepare_select(self.engine.dialect, statement)
        pooled = await self.engine.raw_connection()
        try:
            return prepared.rows(sqlite_rows.sqlite_of(pooled.driver_connection))
        finally:
            pooled.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed when the block ends, rolled back on error."""
        async with self.sessions() as session, session.begin():
            if self.is_sqlite:
                await session.connection(execution_options={_WRITER: True})
            yield session

    def _autocheckpoint_pages(self) -> int:
        running = self._checkpointer is not None and self._checkpointer.running
        return BACKSTOP_PAGES if running else DEFAULT_AUTOCHECKPOINT_PAGES

    async def start_checkpointer(self) -> None:
        """For a long-running process on a SQLite file: WAL checkpoints move to a thread
        (``db.checkpointer``) instead of stalling the commit that triggers one. Does nothing
        on PostgreSQL or an in-memory database."""
        path = make_url(self.url).database
        if not self.is_sqlite or path in (None, "", ":memory:") or self._checkpointer:
            return
        self._checkpointer = WalCheckpointer(path)
        self._checkpointer.start()
        await self._apply_autocheckpoint()

    async def stop_checkpointer(self) -> None:
        if self._checkpointer is None:
            return
        checkpointer, self._checkpointer = self._checkpointer, None
        await asyncio.to_thread(checkpointer.stop)  # joins after its last checkpoint
        await self._apply_autocheckpoint()

    async def _apply_autocheckpoint(self) -> None:
        # The pooled connection was tuned when it opened; later ones read it on connect.
        async with self.engine.connect() as connection:
            pages = self._autocheckpoint_pages()
            await connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={pages}")

    async def dispose(self) -> None:
        await self.stop_checkpointer()
        await self.engine.dispose()
