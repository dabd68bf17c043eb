"""The in-process feature store survives a restart: it is rebuilt from the stored decisions,
and analysts' labels reach it at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from haetae.config import Settings
from haetae.risk.events import Device, Payee, RiskEvent
from haetae.risk.features import InProcessFeatureStore
from haetae.services import Services, build_services
from tests.conftest import Clock, stop_or_show_what_hangs
from tests.helpers import auth, merchant_key, payment_body, service_key

START = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def history() -> list[RiskEvent]:
    """Three days of two customers' payments, logins and transfers, in time order."""
    events: list[RiskEvent] = []
    for n in range(60):
        at = START + timedelta(hours=n, minutes=7 * (n % 5))
        customer = f"c-{n % 2}"
        device = Device(id=f"dev-{n % 3}", ip=f"10.0.0.{n % 4}")
        kind = ("payment", "login", "transfer")[n % 3]
        events.append(
            RiskEvent(
                kind=kind,
                event_id=f"e-{n}",
                customer_id=customer,
                occurred_at=at,
                amount=0 if kind == "login" else 10_000 * (n + 1),
                card_id=f"card-{n % 4}" if kind == "payment" else None,
                terminal_id=f"term-{n % 2}" if kind == "payment" else None,
                payee=Payee(bank_code="090", account_number=f"110-000-{n % 3:06d}")
                if kind == "transfer"
                else None,
                device=device,
                approved=(n % 7 != 0) if kind == "payment" else None,
            )
        )
    return events


async def score_history(services: Services, clock: Clock) -> datetime:
    """Score the history as it happens; returns a time after it, the clock set there."""
    for event in history():
        clock.fixed = event.occurred_at
        await services.risk.evaluate(event)
    clock.fixed = START + timedelta(days=3)
    return clock.fixed


def probes(at: datetime) -> list[dict[str, Any]]:
    return [
        RiskEvent(
            kind="transfer",
            customer_id="c-0",
            occurred_at=at,
            amount=2_000_000,
            payee=Payee(bank_code="090", account_number="110-000-000001"),
            device=Device(id="dev-1", ip="10.0.0.1"),
        ).row(),
        RiskEvent(
            kind="payment",
            customer_id="c-1",
            occurred_at=at,
            amount=50_000,
            card_id="card-1",
            terminal_id="term-1",
            device=Device(id="dev-2"),
        ).row(),
        RiskEvent(kind="login", customer_id="c-1", occurred_at=at, device=Device(id="dev-0")).row(),
    ]


async def test_a_restarted_store_has_the_same_features_as_the_one_before(
    services: Services, settings: Settings, clock: Clock
) -> None:
    at = await score_history(services, clock)
    before = [services.risk.store.features(row) for row in probes(at)]
    empty = InProcessFeatureStore()
    assert before != [empty.features(row) for row in probes(at)]  # the history matters

    restarted = build_services(settings, clock=clock)
    await restarted.start()
    try:
        assert isinstance(restarted.risk.store, InProcessFeatureStore)
        after = [restarted.risk.store.features(row) for row in probes(at)]
    finally:
        await stop_or_show_what_hangs(restarted.stop(), "the restarted services")
    assert after == before


async def test_replay_covers_only_the_configured_days(
    services: Services, settings: Settings, clock: Clock
) -> None:
    at = await score_history(services, clock)
    for days, any_history in ((0, False), (1, True)):
        restarted = build_services(
            settings.model_copy(update={"feature_replay_days": days}), clock=clock
        )
        await restarted.start()
        try:
            features = restarted.risk.store.features(probes(at)[0])
        finally:
            await stop_or_show_what_hangs(restarted.stop(), "the restarted services")
        fresh = InProcessFeatureStore().features(probes(at)[0])
        if any_history:
            # A day of history: the last day's count, but the payee looks new (seen earlier).
            assert (
                features["customer.count_24h"]
                == services.risk.store.features(probes(at)[0])["customer.count_24h"]
            )
            assert features["customer.count_24h"] != fresh["customer.count_24h"]
        else:
            assert features == fresh


async def test_an_analysts_label_reaches_the_terminal_risk_at_once(
    services: Services, client: httpx.AsyncClient, clock: Clock
) -> None:
    """terminal.risk_7d is the share of fraud among the terminal's labelled payments once
    the 7-day delay has passed: a label given through the API must change it at once."""
    clock.fixed = START
    fraud = await services.risk.evaluate(
        RiskEvent(
            kind="payment",
            customer_id="c-9",
            occurred_at=START,
            amount=900_000,
            card_id="card-9",
            terminal_id="term-9",
        )
    )
    probe = RiskEvent(
        kind="payment",
        customer_id="c-8",
        occurred_at=START + timedelta(days=8),
        amount=10_000,
        card_id="card-8",
        terminal_id="term-9",
    ).row()
    # A rate over the labelled payments: none labelled yet, so no rate.
    assert services.risk.store.features(probe)["terminal.risk_7d"] is None
    headers = auth(await service_key(services, "risk"))
    labelled = await client.post(
        f"/v1/risk/reviews/{fraud.decision_id}/label", json={"label": "fraud"}, headers=headers
    )
    assert labelled.status_code == 200, labelled.text
    # The relay delivers the label event after the commit (on PostgreSQL the background
    # relay may hold the batch when the test drains): wait for it, boundedly.
    for _ in range(200):
        await services.relay.drain()
        if services.risk.store.features(probe)["terminal.risk_7d"] is not None:
            break
        await asyncio.sleep(0.05)
    assert services.risk.store.features(probe)["terminal.risk_7d"] == 1


async def test_a_restart_keeps_the_issuers_answers_to_scored_payments(
    services: Services, settings: Settings, client: httpx.AsyncClient, clock: Clock
) -> None:
    """A payment is scored before the issuer answers; the replay finds the answer on the
    payment, so the decline rates after a restart are those before it."""
    clock.fixed = START
    _, key = await merchant_key(services)
    cards = (
        "4242 4242 4242 4242",
        "4000 0000 0000 0002",
        "4000 0000 0000 9995",
        "5555555555554444",
    )
    statuses = []
    for n, number in enumerate(cards):
        response = await client.post(
            "/v1/payments", json=payment_body(number, order_id=f"o-{n}"), headers=auth(key)
        )
        statuses.append(response.json()["status"])
    assert statuses == ["approved", "declined", "declined", "approved"]
    probe = RiskEvent(
        kind="payment",
        customer_id="cust-1",
        occurred_at=START + timedelta(minutes=10),
        amount=15_000,
        device=Device(id="dev-1", ip="203.0.113.7"),
    ).row()
    before = services.risk.store.features(probe)
    assert before["device.decline_rate_1h"] == before["customer.decline_rate_24h"] == 0.5

    restarted = build_services(settings, clock=clock)
    await restarted.start()
    try:
        after = restarted.risk.store.features(probe)
    finally:
        await stop_or_show_what_hangs(restarted.stop(), "the restarted services")
    assert after == before
