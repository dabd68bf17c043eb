"""Pooled PostgreSQL connections are pinged only after they sat idle (``db.idle_ping``):
one the server dropped meanwhile is replaced before a request uses it, and one in steady
use costs no round trip."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from haetae.db import idle_ping
from haetae.db.engine import Database
from tests.helpers import terminate_backend

BACKEND_PID = text("SELECT pg_backend_pid()")


async def _backend_pid(db: Database) -> int:
    async with db.engine.connect() as connection:
        pid = await connection.scalar(BACKEND_PID)
    assert isinstance(pid, int)
    return pid


async def _after_its_connection_is_dropped(database_url: str) -> tuple[int, int]:
    """The backend pid before and after the pool's only connection was terminated."""
    db = Database(database_url, pool_size=1, max_overflow=0)
    try:
        before = await _backend_pid(db)
        terminate_backend(database_url, before)
        await asyncio.sleep(0.3)
        return before, await _backend_pid(db)
    finally:
        await db.dispose()


async def test_a_dropped_idle_connection_is_replaced_before_use(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idle_ping, "IDLE_PING_SECONDS", 0.2)
    before, after = await _after_its_connection_is_dropped(database_url)
    assert after != before


async def test_without_the_ping_the_dropped_connection_fails_its_request(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the ping saves a request from: the same drop, found by the request itself.
    monkeypatch.setattr(idle_ping, "IDLE_PING_SECONDS", 3600.0)
    with pytest.raises(DBAPIError):
        await _after_its_connection_is_dropped(database_url)


async def test_connections_in_steady_use_are_not_pinged(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(database_url, pool_size=1, max_overflow=0)
    dialect = db.engine.sync_engine.dialect
    pings: list[Any] = []
    real_ping = dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted_ping)
    try:
        pids = {await _backend_pid(db) for _ in range(20)}
        assert len(pids) == 1 and pings == []  # one connection, used back to back, no ping
        monkeypatch.setattr(idle_ping, "IDLE_PING_SECONDS", 0.05)
        await asyncio.sleep(0.1)
        assert await _backend_pid(db) in pids
        assert len(pings) == 1  # idle past the threshold: pinged once, and kept
    finally:
        await db.dispose()
