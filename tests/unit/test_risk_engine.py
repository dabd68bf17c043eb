"""The fraud engine end to end over the API: features, analysts' rules and decisions,
the review queue and labels, the voice-phishing warning, certificate reissues feeding the
features, and key-in payments decided by the same engine."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from typer.testing import CliRunner

from haetae.bus.base import Event
from haetae.bus.models import OutboxEvent
from haetae.cli import app
from haetae.payments.models import Payment
from haetae.risk.features import InProcessFeatureStore
from haetae.risk.features.rowops import Row, Value
from haetae.services import Services
from tests.conftest import Clock
from tests.helpers import auth, merchant_key, payment_body, service_key

NOW = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 22:00 in Seoul
PAYEE = {"bank_code": "090", "account_number": "3333-01-7654321"}


def _event(kind: str, at: datetime = NOW, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "customer_id": "c-1", "occurred_at": at.isoformat(), **fields}


async def _rule(client: httpx.AsyncClient, key: str, name: str, rule: str, **extra: Any) -> None:
    response = await client.post(
        "/v1/risk/rules", json={"name": name, "rule": rule, **extra}, headers=auth(key)
    )
    assert response.status_code in (200, 201), response.text


async def _evaluate(
    client: httpx.AsyncClient, key: str, event: dict[str, Any], **headers: str
) -> dict[str, Any]:
    response = await client.post("/v1/risk/evaluate", json=event, headers=auth(key, **headers))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_voice_phishing_sequence_is_blocked_by_the_analysts_rule(
    client: httpx.AsyncClient, services: Services
) -> None:
    key = await service_key(services, "risk")
    await _rule(
        client,
        key,
        "vp-large-new-payee",
        "block if amount > 3_000_000 and payee.is_new and hours_since_cert_reissue < 24",
    )
    genuine = await _evaluate(
        client, key, _event("transfer", NOW - timedelta(days=3), amount=50_000, payee=PAYEE)
    )
    assert genuine["decision"] == "allow" and genuine["rule_hits"] == []

    await _evaluate(
        client, key, _event("certificate_reissue", NOW - timedelta(hours=2), device={"id": "evil"})
    )
    new_payee = {"bank_code": "088", "account_number": "110-222-333333"}
    big = await _evaluate(
        client,
        key,
        _event(
            "transfer",
            amount=5_000_000,
            payee=new_payee,
            device={"id": "evil", "ip": "198.51.100.9"},
        ),
    )
    assert big["decision"] == "block"
    assert big["rule_hits"] == [{"name": "vp-large-new-payee", "version": 1, "decision": "block"}]
    # The same amount to the payee the customer has paid before is not this rule's business.
    known = await _evaluate(client, key, _event("transfer", amount=5_000_000, payee=PAYEE))
    assert known["decision"] == "allow"

    stored = (
        await client.get(f"/v1/risk/decisions/{big['decision_id']}", headers=auth(key))
    ).json()
    assert stored["features"]["payee.is_new"] is True
    assert 1.9 <= stored["features"]["hours_since_cert_reissue"] <= 2.1
    assert stored["event"]["payee_account"] == "110-222-333333"
    async with services.db.sessions() as session:
        announced = [
            e.payload["decision_id"]
            for e in await session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic == "risk.decided")
            )
        ]
    assert big["decision_id"] in announced  # the event names the decision the caller got


async def test_review_decisions_wait_for_an_analyst_and_labels_become_training_data(
    client: httpx.AsyncClient, services: Services, database_url: str, tmp_path: Path
) -> None:
    key = await service_key(services, "risk")
    await _rule(
        client, key, "many-logins", "review if customer.login_count_1h >= 3", kinds=["login"]
    )
    decisions = [
        await _evaluate(
            client, key, _event("login", NOW + timedelta(minutes=i), device={"id": "d"})
        )
        for i in range(4)
    ]
    assert [d["decision"] for d in decisions] == ["allow", "allow", "allow", "review"]
    queue = (await client.get("/v1/risk/reviews", headers=auth(key))).json()["items"]
    assert [item["id"] for item in queue] == [decisions[3]["decision_id"]]

    labelled = await client.post(
        f"/v1/risk/reviews/{queue[0]['id']}/label",
        json={"label": "fraud", "note": "customer confirmed it was not them"},
        headers=auth(key),
    )
    assert labelled.status_code == 200 and labelled.json()["label"] == "fraud"
    assert (await client.get("/v1/risk/reviews", headers=auth(key))).json()["items"] == []
    history = await services.decisions.labelled_history()
    assert history.height == 1 and history["label"].to_list() == [1]
    assert history["kind"].to_list() == ["login"]
    training = await services.decisions.training_history()
    assert training.height == 4 and training["label"].to_list() == [0, 0, 0, 1]
    assert training["device_id"].to_list() == ["d"] * 4

    # `haetae risk export-history` hands the same to `haetae train --data`.
    out = tmp_path / "history.parquet"
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["risk", "export-history", "--out", str(out)],
        env={"HAETAE_DATABASE_URL": database_url, "HAETAE_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out)["label"].to_list() == [0, 0, 0, 1]

    bad = await client.post(
        f"/v1/risk/reviews/{queue[0]['id']}/label", json={"label": "maybe"}, headers=auth(key)
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "label"
    missing = await client.post(
        "/v1/risk/reviews/rsk_nope/label", json={"label": "fraud"}, headers=auth(key)
    )
    assert missing.status_code == 404


async def test_a_transfer_that_looks_like_voice_phishing_gets_the_warning_and_a_delay(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    clock.fixed = NOW
    key = await service_key(services, "risk")
    await _rule(client, key, "new-payee-transfer", "review if payee.is_new and amount >= 1_000_000")
    await _evaluate(
        client,
        key,
        _event("certificate_reissue", NOW - timedelta(hours=1), device={"id": "new-phone"}),
    )
    held = await _evaluate(
        client, key, _event("transfer", amount=2_000_000, payee=PAYEE, device={"id": "new-phone"})
    )
    assert held["decision"] == "review"
    warning = held["warning"]
    assert warning["code"] == "transfer_voice_phishing_warning" and warning["delay_minutes"] == 180
    assert "검찰" in warning["message"] and "금융감독원" in warning["message"]
    assert datetime.fromisoformat(warning["release_at"]) == NOW + timedelta(hours=3)
    english = await _evaluate(
        client,
        key,
        _event(
            "transfer",
            amount=2_000_000,
            payee={"bank_code": "004", "account_number": "123-456-789"},
            device={"id": "new-phone"},
        ),
        **{"Accept-Language": "en"},
    )
    assert "prosecutor" in english["warning"]["message"]
    # A large transfer to a payee paid before, from the usual device: no warning.
    calm = await _evaluate(client, key, _event("transfer", amount=2_000_000, payee=PAYEE))
    assert calm["warning"] is None


async def test_bad_events_get_a_4xx_naming_the_field(
    client: httpx.AsyncClient, services: Services
) -> None:
    key = await service_key(services, "risk")
    cases = [
        (_event("wire"), "kind"),
        ({"kind": "login", "customer_id": "c-1"}, "occurred_at"),
        (_event("transfer", payee={"bank_code": "X", "account_number": "1"}), "payee.bank_code"),
        (_event("transfer", amount=-5), "amount"),
        (_event("login", occurred_at="2026-11-23T13:00:00"), "occurred_at"),  # no offset
    ]
    for body, field in cases:
        response = await client.post("/v1/risk/evaluate", json=body, headers=auth(key))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == field
    payments_only = await service_key(services, "payments")
    denied = await client.post(
        "/v1/risk/evaluate", json=_event("login"), headers=auth(payments_only)
    )
    assert denied.status_code == 403


async def test_a_certificate_reissue_event_feeds_the_engine(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    clock.fixed = NOW
    key = await service_key(services, "risk", "certificates")
    created = await client.post(
        "/v1/certificates",
        json={
            "customer_id": "c-1",
            "device_id": "phone-1",
            "kind": "joint",
            "issued_at": (NOW - timedelta(days=100)).isoformat(),
        },
        headers=auth(key),
    )
    await client.post(
        f"/v1/certificates/{created.json()['id']}/reissue",
        json={"device_id": "phone-evil"},
        headers=auth(key),
    )
    for _ in range(100):  # the outbox relay delivers the event to the engine
        if any(d.kind == "certificate_reissue" for d in await services.decisions.latest(5)):
            break
        await asyncio.sleep(0.05)
    clock.fixed = NOW + timedelta(hours=5)
    transfer = await _evaluate(
        client, key, _event("transfer", NOW + timedelta(hours=5), amount=10_000, payee=PAYEE)
    )
    stored = (
        await client.get(f"/v1/risk/decisions/{transfer['decision_id']}", headers=auth(key))
    ).json()
    assert 4.9 <= stored["features"]["hours_since_cert_reissue"] <= 5.1

    # A redelivered reissue event is decided once (found by its event id).
    reissues = [d for d in await services.decisions.latest(50) if d.kind == "certificate_reissue"]
    assert len(reissues) == 1 and reissues[0].event_id
    async with services.db.sessions() as session:
        outbox_row = await session.scalar(
            select(OutboxEvent).where(OutboxEvent.id == reissues[0].event_id)
        )
    assert outbox_row is not None
    event = Event(
        id=outbox_row.id,
        topic=outbox_row.topic,
        payload=outbox_row.payload,
        occurred_at=outbox_row.occurred_at,
    )
    await services.risk.on_certificate_reissued(event)
    again = [d for d in await services.decisions.latest(50) if d.kind == "certificate_reissue"]
    assert len(again) == 1


def _metric(name: str, **labels: str) -> float:
    """A sample of this process's Prometheus registry (the one /metrics serves)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class _AcrossTheNetwork:
    """A feature store called as the Redis one is (awaited: ``AsyncFeatureStore``), holding
    its history in an in-process store; ``fail_reads`` and ``fail_writes`` make its calls
    fail as Redis's do when it is down or too slow."""

    def __init__(self) -> None:
        self.history = InProcessFeatureStore()
        self.fail_reads = self.fail_writes = False
        self.failed = 0

    def _read(self) -> None:
        if self.fail_reads:
            self.failed += 1
            raise TimeoutError("the feature store did not answer in time")

    async def features(self, row: Row) -> dict[str, Value]:
        self._read()
        return self.history.features(row)

    async def process(self, row: Row) -> dict[str, Value]:
        self._read()
        return self.history.process(row)

    async def update(self, row: Row) -> None:
        if self.fail_writes:
            self.failed += 1
            raise ConnectionError("the feature store's connection was lost")
        self.history.update(row)

    async def record_label(self, row: Row, label: int) -> None:
        self.history.record_label(row, label)


@pytest.mark.parametrize("store", ["in-process", "awaited"])
async def test_key_in_card_testing_is_stepped_up_and_declines_are_counted(
    client: httpx.AsyncClient, services: Services, store: str
) -> None:
    if store == "awaited":
        services.risk.use_store(_AcrossTheNetwork())
    risk_key = await service_key(services, "risk")
    await _rule(
        client,
        risk_key,
        "card-testing",
        "challenge if device.distinct_cards_24h >= 3",
        kinds=["payment"],
    )
    _, shop = await merchant_key(services)
    cards = ["4000000000000002", "5555555555554444", "4000000000009995", "4242424242424242"]
    statuses = []
    for number, card in enumerate(cards):
        body = payment_body(
            card, order_id=f"o-{number}", device={"id": "bot", "ip": "203.0.113.50"}
        )
        response = await client.post("/v1/payments", json=body, headers=auth(shop))
        statuses.append(response.json()["status"])
    # Three distinct cards from the device before the fourth payment: step it up.
    assert statuses == ["declined", "approved", "declined", "challenge_required"]
    queue = await services.decisions.latest(4)
    last = queue[0]
    assert last.kind == "payment" and last.decision == "challenge"
    assert last.features["device.distinct_cards_24h"] == 3
    assert last.features["device.decline_rate_1h"] == 2 / 3  # the issuer's answers counted
    assert last.event["card_id"] and "4242" not in str(last.event)


async def test_a_payment_stands_when_the_feature_store_cannot_count_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    """The issuer's answer reaches the feature store after the payment is decided and
    stored: a store that fails then costs the features one event, not the payment."""
    store = _AcrossTheNetwork()
    services.risk.use_store(store)
    _, shop = await merchant_key(services)
    store.fail_writes = True
    not_counted = _metric("haetae_risk_store_failures_total", call="count")
    approved = _metric("haetae_risk_decisions_total", kind="payment", decision="allow")
    response = await client.post("/v1/payments", json=payment_body(), headers=auth(shop))
    assert response.status_code == 201 and response.json()["status"] == "approved"
    assert store.failed == 1
    assert _metric("haetae_risk_store_failures_total", call="count") == not_counted + 1
    assert _metric("haetae_risk_decisions_total", kind="payment", decision="allow") == approved + 1
    store.fail_writes = False
    again = await client.post("/v1/payments", json=payment_body(order_id="o-2"), headers=auth(shop))
    assert again.status_code == 201
    probe = {"kind": "payment", "customer_id": "cust-1", "occurred_at": services.clock()}
    assert (await store.features({**probe, "card_id": None}))["customer.count_1h"] == 1


async def test_without_its_features_a_payment_fails_closed_with_503(
    client: httpx.AsyncClient, services: Services
) -> None:
    """A feature store that cannot answer means no fraud check: the payment is not sent to
    its issuer (503, retryable, in the catalog's words) and a decision request gets 503
    too, not a 500."""
    store = _AcrossTheNetwork()
    services.risk.use_store(store)
    failures = _metric("haetae_risk_store_failures_total", call="features")
    store.fail_reads = True
    _, shop = await merchant_key(services)
    response = await client.post("/v1/payments", json=payment_body(), headers=auth(shop))
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "failed"
    error = body["error"]
    assert error["code"] == "risk_unavailable" and error["category"] == "network"
    assert error["retryable"] is True and "안전 점검" in error["message"]
    async with services.db.sessions() as session:
        payment = await session.get(Payment, body["id"])
    assert payment is not None and payment.rrn is None and payment.issuer_response_code is None
    risk_key = await service_key(services, "risk")
    decided = await client.post(
        "/v1/risk/evaluate", json=_event("login", device={"id": "d-1"}), headers=auth(risk_key)
    )
    assert decided.status_code == 503 and decided.json()["error"]["code"] == "risk_unavailable"
    assert store.failed == 2
    assert _metric("haetae_risk_store_failures_total", call="features") == failures + 2
    store.fail_reads = False
    again = await client.post("/v1/payments", json=payment_body(order_id="o-2"), headers=auth(shop))
    assert again.status_code == 201


async def test_a_payment_and_its_decision_are_stored_by_the_same_write(
    client: httpx.AsyncClient, services: Services
) -> None:
    """The decision is written with the payment's first write: every stored payment has
    its decision (its event id is the payment's id), and a retry answered from the first
    request's Idempotency-Key, whose own write was undone, leaves no decision behind."""
    _, shop = await merchant_key(services)
    headers = auth(shop, **{"Idempotency-Key": "order-1"})
    first = await client.post("/v1/payments", json=payment_body(), headers=headers)
    retry = await client.post("/v1/payments", json=payment_body(), headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["id"] == first.json()["id"]
    declined = await client.post(
        "/v1/payments", json=payment_body("4000000000000002", order_id="o-2"), headers=auth(shop)
    )
    assert declined.status_code == 402
    decisions = await services.decisions.latest(10)
    assert sorted(d.event_id or "" for d in decisions) == sorted(
        [first.json()["id"], declined.json()["id"]]
    )
    assert {d.kind for d in decisions} == {"payment"}
