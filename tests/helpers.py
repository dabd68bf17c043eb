"""Small helpers the tests share."""

from __future__ import annotations

import socket
import sqlite3
from datetime import datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from haetae.db.buffered import RowBuffer
from haetae.db.engine import Database
from haetae.merchants.models import CardPolicy
from haetae.merchants.service import get_or_create_merchant
from haetae.payments.models import Payment
from haetae.security.api_keys import create_api_key
from haetae.services import Services


async def merchant_key(
    services: Services, name: str = "shop", *, card_policy: CardPolicy | None = None
) -> tuple[str, str]:
    """(merchant id, bearer key) for a new or existing merchant."""
    async with services.db.transaction() as session:
        merchant = await get_or_create_merchant(session, name, card_policy=card_policy)
        key = await create_api_key(
            session, kind="merchant", name=name, scopes=["payments"], merchant_id=merchant.id
        )
    return merchant.id, key


async def service_key(services: Services, *scopes: str) -> str:
    async with services.db.transaction() as session:
        return await create_api_key(session, kind="service", name="ops", scopes=list(scopes))


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def payment_body(number: str = "4242 4242 4242 4242", **overrides: Any) -> dict[str, Any]:
    card = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "737"}
    card.update(overrides.pop("card", {}))
    body: dict[str, Any] = {
        "amount": 15000,
        "currency": "KRW",
        "order_id": "order-1",
        "customer_id": "cust-1",
        "card": card,
        "device": {"id": "dev-1", "ip": "203.0.113.7"},
    }
    body.update(overrides)
    return body


def free_port() -> int:
    """A loopback port nothing listens on right now (for servers that cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def write_through_core(db: Database, rows: RowBuffer) -> None:
    """Buffered rows as SQLAlchemy Core writes them (one INSERT per table): the reference
    the direct paths (``sqlite_rows``, ``pg_rows``) are compared with."""
    async with db.engine.begin() as connection:
        for table, table_rows in rows.take().items():
            await connection.execute(insert(table), table_rows)


def terminate_backend(database_url: str, pid: int) -> None:
    """Drop one PostgreSQL server connection, as a restart, a failover or an idle timeout
    would."""
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            terminated = connection.scalar(
                sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
            )
            assert terminated
    finally:
        engine.dispose()


def query_rows(database_url: str, sql: str, *params: object) -> list[dict[str, object]]:
    """Rows as the database holds them, by column name: SQLite's stored values through
    sqlite3, PostgreSQL's through psycopg (no SQLAlchemy type processing)."""
    if database_url.startswith("sqlite"):
        stored = sqlite3.connect(str(make_url(database_url).database))
        try:
            cursor = stored.execute(sql.replace("%s", "?"), params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            stored.close()
    with psycopg.connect(database_url) as connection:
        cursor = connection.execute(sql.encode(), params)
        names = [d.name for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def stored_rows(database_url: str, table: str, *ids: str) -> list[dict[str, object]]:
    """The rows with these ids ({} for a missing one)."""
    return [
        next(iter(query_rows(database_url, f"SELECT * FROM {table} WHERE id = %s", i)), {})
        for i in ids
    ]


def new_payment(payment_id: str, created_at: datetime) -> Payment:
    """A key-in payment about to be authorized, as the payment path first writes it."""
    return Payment(
        id=payment_id,
        merchant_id="mer-1",
        order_id="o-1",
        customer_id="c-1",
        amount=12_000,
        currency="KRW",
        status="authorizing",
        card_masked="424242******4242",
        internal_flags=[],
        risk_reasons=["새 기기"],
        error_params=None,
        created_at=created_at,
    )
