"""Step-up, cancel, timeouts with reversal, unreachable issuer, maintenance windows."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from haetae.config import IssuerSettings
from haetae.issuer_sim.cards import NO_ANSWER_CARD, STEP_UP_CARD
from haetae.issuer_sim.server import IssuerSimulator
from haetae.merchants.models import Merchant
from haetae.payments.models import Payment
from haetae.services import Services
from tests.conftest import Clock
from tests.helpers import auth, merchant_key, payment_body, service_key


async def _latest_code(client: httpx.AsyncClient, ops_key: str, customer: str = "cust-1") -> str:
    inbox = await client.get(f"/v1/customers/{customer}/inbox", headers=auth(ops_key))
    assert inbox.status_code == 200
    item = inbox.json()["items"][0]
    assert item["kind"] == "payment_otp"
    match = re.search(r"\b(\d{6})\b", item["body"])
    assert match, item["body"]
    return match.group(1)


async def test_issuer_step_up_then_approval(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    ops = await service_key(services, "notify")
    created = await client.post("/v1/payments", json=payment_body(STEP_UP_CARD), headers=auth(key))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "challenge_required"
    assert body["challenge"]["attempts_left"] == 3
    code = await _latest_code(client, ops)

    wrong = "000000" if code != "000000" else "111111"
    bad = await client.post(
        f"/v1/payments/{body['id']}/challenge", json={"otp": wrong}, headers=auth(key)
    )
    assert bad.status_code == 402
    assert bad.json()["status"] == "challenge_required"
    assert bad.json()["error"]["code"] == "otp_incorrect"
    assert "2회" in bad.json()["error"]["message"]

    good = await client.post(
        f"/v1/payments/{body['id']}/challenge", json={"otp": code}, headers=auth(key)
    )
    assert good.status_code == 201, good.text
    assert good.json()["status"] == "approved"
    codes = [a.response_code for a in issuer_sim.authorizations]
    assert codes == ["1A", "00"]  # soft decline, then approval with the step-up result

    again = await client.post(
        f"/v1/payments/{body['id']}/challenge", json={"otp": code}, headers=auth(key)
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "challenge_not_pending"


async def test_three_wrong_codes_fail_the_payment(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    ops = await service_key(services, "notify")
    created = await client.post("/v1/payments", json=payment_body(STEP_UP_CARD), headers=auth(key))
    payment_id = created.json()["id"]
    code = await _latest_code(client, ops)
    wrong = "000000" if code != "000000" else "111111"
    results = [
        await client.post(
            f"/v1/payments/{payment_id}/challenge",
            json={"otp": wrong},
            headers=auth(key, **{"Accept-Language": "en"}),
        )
        for _ in range(3)
    ]
    assert [r.json()["error"]["code"] for r in results] == [
        "otp_incorrect",
        "otp_incorrect",
        "authentication_failed",
    ]
    final = results[-1].json()
    assert final["status"] == "failed" and final["error"]["category"] == "authentication"
    # The right code no longer helps, and the issuer was never asked again.
    late = await client.post(
        f"/v1/payments/{payment_id}/challenge", json={"otp": code}, headers=auth(key)
    )
    assert late.status_code == 409
    assert [a.response_code for a in issuer_sim.authorizations] == ["1A"]


async def test_risk_threshold_steps_up_before_the_issuer(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    ops = await service_key(services, "notify")
    created = await client.post(
        "/v1/payments", json=payment_body(amount=1_500_000), headers=auth(key)
    )
    assert created.json()["status"] == "challenge_required"
    assert issuer_sim.authorizations == []
    code = await _latest_code(client, ops)
    done = await client.post(
        f"/v1/payments/{created.json()['id']}/challenge", json={"otp": code}, headers=auth(key)
    )
    assert done.json()["status"] == "approved"


async def test_challenge_expires(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    _, key = await merchant_key(services)
    ops = await service_key(services, "notify")
    created = await client.post("/v1/payments", json=payment_body(STEP_UP_CARD), headers=auth(key))
    code = await _latest_code(client, ops)
    clock.fixed = datetime(2099, 1, 1, tzinfo=UTC)
    late = await client.post(
        f"/v1/payments/{created.json()['id']}/challenge", json={"otp": code}, headers=auth(key)
    )
    assert late.status_code == 402
    assert late.json()["error"]["code"] == "challenge_expired"


async def test_cancel_reverses_at_the_issuer(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    card = "4242424242424242"
    before = issuer_sim.balance(card)
    created = await client.post("/v1/payments", json=payment_body(card), headers=auth(key))
    payment_id = created.json()["id"]
    assert issuer_sim.balance(card) == before - 15000
    cancelled = await client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert issuer_sim.balance(card) == before
    again = await client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "payment_not_cancellable"
    assert issuer_sim.balance(card) == before


@pytest.mark.issuer_timeout(0.5)
async def test_timeout_fails_the_payment_and_reverses_it(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    before = issuer_sim.balance(NO_ANSWER_CARD)
    response = await client.post(
        "/v1/payments", json=payment_body(NO_ANSWER_CARD), headers=auth(key)
    )
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "issuer_timeout"
    assert body["error"]["category"] == "network" and body["error"]["retryable"] is True
    assert "청구되지 않습니다" in body["error"]["message"]
    await services.reversals.wait_idle()
    async with services.db.sessions() as session:
        payment = await session.get(Payment, body["id"])
    assert payment is not None and payment.reversal_status == "done"
    assert payment.rrn in issuer_sim.reversals
    assert issuer_sim.balance(NO_ANSWER_CARD) == before  # the hold was released


async def test_owed_reversal_survives_until_the_issuer_answers(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    """A reversal that cannot get through is kept in the database and sent by the sweep."""
    _, key = await merchant_key(services)
    before = issuer_sim.balance(NO_ANSWER_CARD)
    issuer_sim.drop_rate = 1.0  # the issuer holds the money but every answer is lost
    response = await client.post(
        "/v1/payments", json=payment_body(NO_ANSWER_CARD), headers=auth(key)
    )
    assert response.json()["error"]["code"] == "issuer_timeout"
    await services.reversals.stop()  # the in-process retries die with the "process"
    assert issuer_sim.balance(NO_ANSWER_CARD) == before - 15000
    assert await services.reversals.sweep() == 0  # answers still lost: still owed
    async with services.db.sessions() as session:
        payment = await session.get(Payment, response.json()["id"])
    assert payment is not None and payment.reversal_status == "pending"

    issuer_sim.drop_rate = 0.0
    assert await services.reversals.sweep() == 1
    assert issuer_sim.balance(NO_ANSWER_CARD) == before
    async with services.db.sessions() as session:
        payment = await session.get(Payment, response.json()["id"])
    assert payment is not None and payment.reversal_status == "done"
    assert await services.reversals.sweep() == 0  # nothing left to send


async def test_unreachable_issuer(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    await issuer_sim.stop()
    response = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "issuer_unreachable"
    async with services.db.sessions() as session:
        payment = (await session.scalars(select(Payment))).one()
    assert payment.reversal_status == "none"  # never sent, nothing to undo


async def test_maintenance_window_answers_without_calling_out(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator, clock: Clock
) -> None:
    _, key = await merchant_key(services)
    services.issuers._issuers[0] = type(services.issuers._issuers[0])(
        IssuerSettings.model_validate(
            {
                **services.issuers._issuers[0].settings.model_dump(),
                "maintenance": "23:30-00:30",
            }
        ),
        services.issuers._issuers[0].connector,
    )
    clock.fixed = datetime(2026, 11, 22, 14, 45, tzinfo=UTC)  # 23:45 in Seoul
    ko = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    assert ko.status_code == 503
    error = ko.json()["error"]
    assert error["code"] == "issuer_maintenance" and error["category"] == "maintenance"
    assert "00:30" in error["message"] and "00:30" in error["next_step"]
    en = await client.post(
        "/v1/payments", json=payment_body(), headers=auth(key, **{"Accept-Language": "en"})
    )
    assert "00:30 KST" in en.json()["error"]["message"]
    assert issuer_sim.authorizations == []
    clock.fixed = datetime(2026, 11, 22, 15, 31, tzinfo=UTC)  # 00:31 in Seoul
    after = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    assert after.status_code == 201


async def test_a_currency_the_gateway_cannot_send_is_refused_up_front(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    merchant_id, key = await merchant_key(services)
    async with services.db.transaction() as session:
        merchant = await session.get(Merchant, merchant_id)
        assert merchant is not None
        merchant.amount_limits = {**merchant.amount_limits, "AUD": 100_000}
    response = await client.post(
        "/v1/payments", json=payment_body(currency="AUD", amount=5000), headers=auth(key)
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "currency_not_accepted"
    assert issuer_sim.authorizations == []


async def test_an_unexpected_connector_failure_fails_safely_and_reverses(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    connector = services.issuers.issuers[0].connector

    async def broken(request: object) -> object:
        raise RuntimeError("a bug in an adapter")

    connector.authorize = broken  # type: ignore[method-assign,assignment]
    response = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "issuer_system_error"
    await services.reversals.wait_idle()
    async with services.db.sessions() as session:
        payment = (await session.scalars(select(Payment))).one()
    assert payment.reversal_status == "done"  # maybe sent, so undone
