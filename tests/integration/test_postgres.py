"""Behaviour that only a real multi-connection server shows: concurrent writers on
PostgreSQL, row locks, and the migrations round trip."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa
from alembic import command
from sqlalchemy import func, select

from haetae.bus import OutboxRelay
from haetae.bus.models import OutboxEvent
from haetae.db.migrate import alembic_config
from haetae.issuer_sim.server import IssuerSimulator
from haetae.payments.models import Payment
from haetae.services import Services
from tests.helpers import auth, merchant_key, payment_body


async def test_runs_on_postgresql(services: Services) -> None:
    assert services.db.engine.dialect.name == "postgresql"


async def test_concurrent_idempotent_retries_authorize_once_on_postgres(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    for round_ in range(3):
        headers = auth(key, **{"Idempotency-Key": f"pg-race-{round_}"})
        body = payment_body(order_id=f"o-{round_}")
        responses = await asyncio.gather(
            *(client.post("/v1/payments", json=body, headers=headers) for _ in range(20))
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["id"] for r in responses}) == 1
    assert len(issuer_sim.authorizations) == 3
    async with services.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 3


async def test_concurrent_cancels_reverse_once(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    created = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    payment_id = created.json()["id"]
    responses = await asyncio.gather(
        *(client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key)) for _ in range(8))
    )
    codes = [r.status_code for r in responses]
    # Each answer is the truth at its moment: cancelled (200), not confirmed yet while the
    # one reversal was in flight (503), or already cancelled before it began (409).
    assert 200 in codes and set(codes) <= {200, 409, 503}
    assert len(issuer_sim.reversals) == 1  # whatever they were told, one reversal was sent
    fetched = await client.get(f"/v1/payments/{payment_id}", headers=auth(key))
    assert fetched.json()["status"] == "cancelled"


async def test_two_relays_share_the_outbox_without_double_delivery(services: Services) -> None:
    from haetae.bus import Event, InProcessBus, add_event

    await services.relay.stop()  # only the two relays below may publish
    delivered: list[str] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0.001)
        delivered.append(event.id)

    relays = []
    for _ in range(2):
        bus = InProcessBus()
        bus.subscribe("load.*", "counter", slow)
        relays.append(OutboxRelay(services.db, bus, batch=20))
    async with services.db.transaction() as session:
        for n in range(200):
            add_event(session, "load.event", {"n": n})
    counts = await asyncio.gather(*(relay.drain() for relay in relays))
    assert sum(counts) == 200
    assert len(delivered) == len(set(delivered)) == 200
    async with services.db.sessions() as session:
        left = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )
    assert left == 0


def test_migrations_downgrade_and_upgrade_cleanly(database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert tables <= {"alembic_version"}
    command.upgrade(config, "head")
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert {"payments", "outbox_events", "idempotency_keys", "vault_cards"} <= tables
