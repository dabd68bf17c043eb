"""What a crashed or interrupted process leaves behind is finished by the housekeeper."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from haetae.config import Settings
from haetae.db.base import utcnow
from haetae.issuer_sim.cards import STEP_UP_CARD
from haetae.issuer_sim.server import IssuerSimulator
from haetae.merchants.models import Merchant
from haetae.payments.connectors.base import AuthorizationRequest, IssuerReply
from haetae.payments.models import IdempotencyRecord, Payment
from haetae.payments.schemas import PaymentCreate
from haetae.services import Services, build_services
from tests.conftest import Clock
from tests.helpers import auth, merchant_key, payment_body


async def test_a_payment_interrupted_mid_authorization_is_failed_and_reversed(
    services: Services, settings: Settings, issuer_sim: IssuerSimulator
) -> None:
    """Process A dies while waiting for the issuer; process B, sharing the database, fails
    the payment, reverses it and answers the retried request with that outcome."""
    merchant_id, _ = await merchant_key(services)
    asked = asyncio.Event()

    async def hang(request: AuthorizationRequest) -> IssuerReply:
        asked.set()
        await asyncio.Event().wait()  # the issuer never answers before A dies
        raise AssertionError("unreachable")

    services.issuers.issuers[0].connector.authorize = hang  # type: ignore[method-assign]
    async with services.db.sessions() as session:
        merchant = await session.get(Merchant, merchant_id)
    assert merchant is not None
    body = PaymentCreate.model_validate(payment_body())
    process_a = asyncio.create_task(
        services.payments.create(merchant, body, locale="ko", idempotency_key="crash-1")
    )
    await asyncio.wait_for(asked.wait(), timeout=5)

    later = Clock()
    later.fixed = utcnow() + timedelta(minutes=5)
    process_b = build_services(settings, clock=later)
    try:
        report = await process_b.housekeeper.run_once()
        assert report.interrupted == 1 and report.reversals_acknowledged == 1
        async with process_b.db.sessions() as session:
            payment = (await session.scalars(select(Payment))).one()
            record = await session.get(IdempotencyRecord, (merchant_id, "crash-1"))
        assert payment.status == "failed" and payment.error_code == "issuer_timeout"
        assert payment.reversal_status == "done" and payment.rrn in issuer_sim.reversals
        assert record is not None and record.status == "completed"
        replay = await process_b.payments.create(
            merchant, body, locale="ko", idempotency_key="crash-1"
        )
        assert replay.status_code == 503
        assert replay.body.id == payment.id and replay.body.error is not None
        assert replay.body.error.code == "issuer_timeout"
    finally:
        process_a.cancel()
        with pytest.raises(asyncio.CancelledError):
            await process_a
        await process_b.stop()


async def test_unfinished_step_ups_expire(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    _, key = await merchant_key(services)
    created = await client.post("/v1/payments", json=payment_body(STEP_UP_CARD), headers=auth(key))
    assert created.json()["status"] == "challenge_required"
    assert (await services.housekeeper.run_once()).expired_challenges == 0
    clock.fixed = utcnow() + timedelta(minutes=6)
    assert (await services.housekeeper.run_once()).expired_challenges == 1
    fetched = await client.get(f"/v1/payments/{created.json()['id']}", headers=auth(key))
    assert fetched.json()["status"] == "failed"
    assert fetched.json()["error"]["code"] == "challenge_expired"


async def test_a_cancel_the_issuer_did_not_acknowledge_is_finished_later(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    card = "5555555555554444"
    before = issuer_sim.balance(card)
    created = await client.post("/v1/payments", json=payment_body(card), headers=auth(key))
    payment_id = created.json()["id"]
    issuer_sim.drop_rate = 1.0
    cancel = await client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key))
    assert cancel.status_code == 503
    assert cancel.json()["error"]["code"] == "cancel_not_confirmed"
    assert cancel.json()["error"]["retryable"] is True
    during = await client.get(f"/v1/payments/{payment_id}", headers=auth(key))
    assert during.json()["status"] == "approved"  # not cancelled until the issuer confirms
    again = await client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key))
    assert again.status_code == 503  # retrying is safe: one sender at a time
    issuer_sim.drop_rate = 0.0
    assert (await services.housekeeper.run_once()).reversals_acknowledged == 1
    fetched = await client.get(f"/v1/payments/{payment_id}", headers=auth(key))
    assert fetched.json()["status"] == "cancelled"
    late = await client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key))
    assert late.status_code == 409
    assert issuer_sim.balance(card) == before


async def test_idempotency_keys_are_kept_24_hours(
    client: httpx.AsyncClient, services: Services, clock: Clock, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    headers = auth(key, **{"Idempotency-Key": "day-old"})
    first = await client.post("/v1/payments", json=payment_body(), headers=headers)
    clock.fixed = utcnow() + timedelta(hours=23, minutes=59)
    assert (await services.housekeeper.run_once()).idempotency_keys_purged == 0
    replay = await client.post("/v1/payments", json=payment_body(), headers=headers)
    assert replay.json()["id"] == first.json()["id"]
    clock.fixed = utcnow() + timedelta(hours=24, minutes=1)
    assert (await services.housekeeper.run_once()).idempotency_keys_purged == 1
    fresh = await client.post("/v1/payments", json=payment_body(), headers=headers)
    assert fresh.json()["id"] != first.json()["id"]
    assert len(issuer_sim.authorizations) == 2


async def test_a_payment_in_flight_reads_as_processing(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await merchant_key(services)
    asked = asyncio.Event()
    release = asyncio.Event()
    connector = services.issuers.issuers[0].connector
    real_authorize = connector.authorize

    async def slow(request: AuthorizationRequest) -> IssuerReply:
        asked.set()
        await release.wait()
        return await real_authorize(request)

    connector.authorize = slow  # type: ignore[method-assign]
    paying = asyncio.create_task(
        client.post("/v1/payments", json=payment_body(), headers=auth(key))
    )
    await asyncio.wait_for(asked.wait(), timeout=5)
    async with services.db.sessions() as session:
        payment_id = (await session.scalars(select(Payment.id))).one()
    during = await client.get(f"/v1/payments/{payment_id}", headers=auth(key))
    assert during.json()["status"] == "processing" and during.json()["error"] is None
    cancel = await client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key))
    assert cancel.status_code == 409 and "processing" in cancel.json()["error"]["message"]
    release.set()
    assert (await paying).json()["status"] == "approved"


async def test_a_late_issuer_approval_does_not_overwrite_recovery(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator, clock: Clock
) -> None:
    """The issuer answers only after recovery failed the payment and reversed it: the late
    approval must not turn the payment back into "approved" (the customer was told nothing
    was charged), and since the issuer did approve, it is reversed once more."""
    _, key = await merchant_key(services)
    connector = services.issuers.issuers[0].connector
    asked, release = asyncio.Event(), asyncio.Event()

    async def late_approval(request: AuthorizationRequest) -> IssuerReply:
        asked.set()
        await release.wait()
        return IssuerReply(response_code="00", stan="000777", rrn=request.rrn, approval_code="1")

    connector.authorize = late_approval  # type: ignore[method-assign]
    headers = auth(key, **{"Idempotency-Key": "late-1"})
    paying = asyncio.create_task(client.post("/v1/payments", json=payment_body(), headers=headers))
    await asyncio.wait_for(asked.wait(), timeout=5)
    clock.fixed = utcnow() + timedelta(minutes=5)
    report = await services.housekeeper.run_once()
    assert report.interrupted == 1 and report.reversals_acknowledged == 1

    release.set()
    response = await paying
    assert response.status_code == 503, response.text
    assert response.json()["status"] == "failed"
    assert response.json()["error"]["code"] == "issuer_timeout"
    await services.reversals.wait_idle()
    async with services.db.sessions() as session:
        payment = (await session.scalars(select(Payment))).one()
        record = await session.get(IdempotencyRecord, (payment.merchant_id, "late-1"))
    assert payment.status == "failed" and payment.approval_code is None
    assert payment.reversal_status == "done" and payment.reversal_attempts == 2
    assert issuer_sim.reversals.count(payment.rrn) == 2
    assert record is not None and record.response_status == 503
    replay = await client.post("/v1/payments", json=payment_body(), headers=headers)
    assert replay.status_code == 503 and replay.json()["id"] == payment.id


async def test_a_reversal_is_sent_by_one_sender_at_a_time(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    created = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    payment_id = created.json()["id"]
    issuer_sim.latency_ms = 300  # the reversal is in flight long enough to race it
    cancelling = asyncio.create_task(
        client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key))
    )
    for _ in range(100):
        async with services.db.sessions() as session:
            payment = await session.get(Payment, payment_id)
        if payment is not None and payment.reversal_status == "sending":
            break
        await asyncio.sleep(0.01)
    swept, second = await asyncio.gather(
        services.reversals.sweep(),
        client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key)),
    )
    assert swept == 0  # the sweep saw the claim and left it alone
    assert second.status_code == 503  # so did the second cancel: not confirmed yet
    assert (await cancelling).status_code == 200
    assert payment is not None and issuer_sim.reversals.count(payment.rrn) == 1


async def test_a_refused_reversal_stops_after_the_attempt_limit(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    from datetime import time

    _, key = await merchant_key(services)
    created = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    payment_id = created.json()["id"]
    issuer_sim.maintenance = [(time(0, 0), time(23, 59, 59))]  # now it answers 91 to all
    cancel = await client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key))
    assert cancel.json()["error"]["code"] == "cancel_not_confirmed"
    limit = services.issuers.issuers[0].settings.reversal_attempts
    for _ in range(limit - 1):
        attempt = await services.reversals.reverse_once(payment_id)
        assert attempt.sent and not attempt.acknowledged
    async with services.db.sessions() as session:
        payment = await session.get(Payment, payment_id)
    assert payment is not None
    assert payment.reversal_status == "failed" and payment.reversal_attempts == limit
    assert await services.reversals.sweep() == 0  # a person has to look at it now
