"""Key-in payments through the real app, a real database and the issuer simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from haetae.issuer_sim.cards import DOMESTIC_CORPORATE_CARD, DOMESTIC_PERSONAL_CARD
from haetae.issuer_sim.server import IssuerSimulator
from haetae.payments.models import Payment
from haetae.services import Services
from tests.helpers import auth, merchant_key, payment_body, service_key


async def test_approves_a_good_card(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await merchant_key(services)
    response = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "approved"
    assert body["amount"] == 15000 and body["currency"] == "KRW"
    assert body["card"] == {"brand": "visa", "masked": "424242******4242", "token": None}
    assert body["approval_code"]
    assert body["error"] is None
    fetched = await client.get(f"/v1/payments/{body['id']}", headers=auth(key))
    assert fetched.status_code == 200
    assert fetched.json()["status"] == "approved"


@pytest.mark.parametrize(
    ("number", "http", "status", "code", "category", "field"),
    [
        ("4000000000009995", 402, "declined", "insufficient_funds", "issuer_policy", None),
        ("4000000000006975", 402, "declined", "limit_exceeded", "issuer_policy", None),
        (
            "4000000000000069",
            402,
            "declined",
            "card_expired_at_issuer",
            "card_info",
            "card.exp_year",
        ),
        ("4000000000000127", 402, "declined", "cvc_mismatch", "card_info", "card.cvc"),
        ("4000000000009987", 402, "declined", "card_declined", "issuer_policy", None),
        ("4000000000000119", 503, "failed", "issuer_unavailable", "network", None),
        ("4000000000000002", 402, "declined", "card_declined", "issuer_policy", None),
        ("4111111111111111", 402, "declined", "card_number_unknown", "card_info", "card.number"),
    ],
)
async def test_issuer_answers_map_to_the_catalog(
    client: httpx.AsyncClient,
    services: Services,
    number: str,
    http: int,
    status: str,
    code: str,
    category: str,
    field: str | None,
) -> None:
    _, key = await merchant_key(services)
    response = await client.post("/v1/payments", json=payment_body(number), headers=auth(key))
    assert response.status_code == http, response.text
    body = response.json()
    assert body["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["category"] == category
    assert body["error"]["field"] == field
    assert body["error"]["message"] and body["error"]["next_step"]
    assert body["card"]["masked"].endswith(number[-4:])


async def test_lost_card_is_declined_generically_but_flagged(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await merchant_key(services)
    response = await client.post(
        "/v1/payments", json=payment_body("4000000000009987"), headers=auth(key)
    )
    body = response.json()
    assert body["error"]["code"] == "card_declined"
    assert "분실" not in body["error"]["message"] and "lost" not in response.text.lower()
    async with services.db.sessions() as session:
        payment = await session.get(Payment, body["id"])
    assert payment is not None and "lost_card" in payment.internal_flags


@pytest.mark.parametrize(
    ("card", "code", "field"),
    [
        ({"number": "4242 4242 4242 4241"}, "card_number_invalid", "card.number"),
        ({"number": "4242-4242-4242-424x"}, "card_number_invalid", "card.number"),
        ({"number": "4242.4242.4242.4242"}, "card_number_invalid", "card.number"),
        ({"number": "1234567812345678"}, "card_brand_unsupported", "card.number"),
        ({"exp_month": 13}, "card_expiry_invalid", "card.exp_month"),
        ({"exp_month": 1, "exp_year": 2021}, "card_expired", "card.exp_year"),
        ({"cvc": "12"}, "cvc_invalid", "card.cvc"),
        ({"number": "378282246310005", "cvc": "123"}, "cvc_invalid", "card.cvc"),
        ({"cvc": None}, "card_verification_required", "card.cvc"),
        (
            {"birth_or_business_no": "901332"},
            "birth_or_business_no_invalid",
            "card.birth_or_business_no",
        ),
        ({"password_2digits": "1a"}, "card_password_invalid", "card.password_2digits"),
    ],
)
async def test_card_errors_name_the_field_in_korean_and_english(
    client: httpx.AsyncClient,
    services: Services,
    issuer_sim: IssuerSimulator,
    card: dict[str, object],
    code: str,
    field: str,
) -> None:
    _, key = await merchant_key(services)
    body = payment_body(card=card)
    ko = await client.post("/v1/payments", json=body, headers=auth(key))
    en = await client.post(
        "/v1/payments", json=body, headers=auth(key, **{"Accept-Language": "en-US,en;q=0.9"})
    )
    assert ko.status_code == en.status_code == 402
    assert ko.json()["status"] == "failed"
    ko_error, en_error = ko.json()["error"], en.json()["error"]
    assert ko_error["code"] == en_error["code"] == code
    assert ko_error["field"] == field
    assert ko_error["category"] == "card_info" and ko_error["retryable"] is False
    assert any("\uac00" <= ch <= "\ud7a3" for ch in ko_error["message"])  # Hangul
    assert en_error["message"].isascii() and en_error["message"] != ko_error["message"]
    assert issuer_sim.authorizations == []  # nothing reached the issuer


async def test_korean_domestic_key_in(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await merchant_key(services)
    domestic = {"cvc": None, "birth_or_business_no": "900101", "password_2digits": "12"}
    ok = await client.post(
        "/v1/payments", json=payment_body(DOMESTIC_PERSONAL_CARD, card=domestic), headers=auth(key)
    )
    assert ok.status_code == 201 and ok.json()["card"]["brand"] == "domestic"
    wrong_birth = {**domestic, "birth_or_business_no": "900102"}
    r = await client.post(
        "/v1/payments",
        json=payment_body(DOMESTIC_PERSONAL_CARD, card=wrong_birth),
        headers=auth(key),
    )
    assert r.json()["error"]["code"] == "holder_verification_failed"
    wrong_password = {**domestic, "password_2digits": "99"}
    r = await client.post(
        "/v1/payments",
        json=payment_body(DOMESTIC_PERSONAL_CARD, card=wrong_password),
        headers=auth(key),
    )
    assert r.json()["error"]["code"] == "card_password_incorrect"
    corporate = {"cvc": None, "birth_or_business_no": "123-45-67890", "password_2digits": "34"}
    r = await client.post(
        "/v1/payments",
        json=payment_body(DOMESTIC_CORPORATE_CARD, card=corporate),
        headers=auth(key),
    )
    assert r.status_code == 201, r.text
    missing = await client.post(
        "/v1/payments",
        json=payment_body(DOMESTIC_PERSONAL_CARD, card={"cvc": "123"}),
        headers=auth(key),
    )
    assert missing.json()["error"]["code"] == "card_verification_required"
    assert missing.json()["error"]["field"] == "card.birth_or_business_no"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("card"), "card"),
        (lambda b: b.update(amount="15000"), "amount"),
        (lambda b: b.update(amount=-5), "amount"),
        (lambda b: b.update(amount=10.5), "amount"),
        (lambda b: b.update(currency="krw"), "currency"),
        (lambda b: b["card"].update(cvv="123"), "card.cvv"),
        (lambda b: b["card"].update(exp_month="12"), "card.exp_month"),
        (lambda b: b.update(device={"id": "d", "ip": "999.1.1.1"}), "device.ip"),
        (lambda b: b.update(order_id=""), "order_id"),
    ],
)
async def test_malformed_requests_get_422_naming_the_field(
    client: httpx.AsyncClient, services: Services, mutate: object, field: str
) -> None:
    _, key = await merchant_key(services)
    body = payment_body()
    mutate(body)  # type: ignore[operator]
    response = await client.post("/v1/payments", json=body, headers=auth(key))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["category"] == "request"
    async with services.db.sessions() as session:
        assert (await session.scalars(select(Payment))).all() == []


async def test_not_json_is_422(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await merchant_key(services)
    response = await client.post(
        "/v1/payments",
        content=b"{not json",
        headers=auth(key, **{"Content-Type": "application/json"}),
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "request_invalid"
    assert response.json()["error"]["field"] == "body"  # not the byte offset (ADR 0006)


async def test_a_body_over_the_limit_gets_413_naming_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    """A body over HAETAE_MAX_BODY_BYTES (1 MiB) is refused before it is read whole: with
    its length announced, or streamed without one; on the lean payment route and on an
    ordinary FastAPI route alike. Nothing is written."""
    _, key = await merchant_key(services)
    big = payment_body(order_id="x" * (1024 * 1024))
    announced = await client.post("/v1/payments", json=big, headers=auth(key))
    assert announced.status_code == 413, announced.text
    error = announced.json()["error"]
    assert error["code"] == "request_too_large" and error["field"] == "body"
    assert error["message"] == "요청 본문이 너무 큽니다 (최대 1024 KB)."

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 32 * 1024

    streamed = await client.post(
        "/v1/payments",
        content=chunks(),
        headers=auth(key, **{"Content-Type": "application/json", "Accept-Language": "en"}),
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["message"] == (
        "The request body is too large (at most 1024 KB)."
    )
    other_route = await client.post(
        "/v1/fraud-reports",
        content=b"{" + b" " * (1024 * 1024 + 1),
        headers=auth(await service_key(services, "cases"), **{"Content-Type": "application/json"}),
    )
    assert other_route.status_code == 413
    assert other_route.json()["error"]["code"] == "request_too_large"
    small = payment_body(order_id="o-small")
    assert (await client.post("/v1/payments", json=small, headers=auth(key))).status_code == 201
    async with services.db.sessions() as session:
        orders = (await session.scalars(select(Payment.order_id))).all()
    assert orders == ["o-small"]


async def test_amount_limits_and_currency(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await merchant_key(services)
    too_small = await client.post("/v1/payments", json=payment_body(amount=99), headers=auth(key))
    assert too_small.status_code == 422 and too_small.json()["error"]["code"] == "amount_invalid"
    too_big = await client.post(
        "/v1/payments", json=payment_body(amount=10_000_001), headers=auth(key)
    )
    assert too_big.status_code == 422
    assert too_big.json()["error"]["code"] == "amount_over_limit"
    assert "10,000,000원" in too_big.json()["error"]["message"]
    yen = await client.post("/v1/payments", json=payment_body(currency="XAU"), headers=auth(key))
    assert yen.status_code == 422 and yen.json()["error"]["field"] == "currency"


async def test_keys_scopes_and_merchant_isolation(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key_a = await merchant_key(services, "shop-a")
    _, key_b = await merchant_key(services, "shop-b")
    created = await client.post("/v1/payments", json=payment_body(), headers=auth(key_a))
    payment_id = created.json()["id"]

    assert (await client.get(f"/v1/payments/{payment_id}")).status_code == 401
    wrong = await client.get(f"/v1/payments/{payment_id}", headers=auth(key_a + "x"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    other = await client.get(f"/v1/payments/{payment_id}", headers=auth(key_b))
    assert other.status_code == 404
    cancel_other = await client.post(f"/v1/payments/{payment_id}/cancel", headers=auth(key_b))
    assert cancel_other.status_code == 404

    risk_only = await service_key(services, "risk")
    forbidden = await client.get(f"/v1/payments/{payment_id}", headers=auth(risk_only))
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    ops = await service_key(services, "payments")
    assert (await client.get(f"/v1/payments/{payment_id}", headers=auth(ops))).status_code == 200
    merchant_on_inbox = await client.get("/v1/customers/cust-1/inbox", headers=auth(key_a))
    assert merchant_on_inbox.status_code == 403


async def test_idempotency_replays_and_rejects_a_different_body(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    headers = auth(key, **{"Idempotency-Key": "order-1-attempt-1"})
    first = await client.post("/v1/payments", json=payment_body(), headers=headers)
    again = await client.post("/v1/payments", json=payment_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.content == again.content  # the stored text is the answer's own
    assert len(issuer_sim.authorizations) == 1
    different = await client.post("/v1/payments", json=payment_body(amount=20000), headers=headers)
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "idempotency_key_reused"
    too_long = await client.post(
        "/v1/payments", json=payment_body(), headers=auth(key, **{"Idempotency-Key": "k" * 256})
    )
    assert too_long.status_code == 422


async def test_concurrent_retries_authorize_once(
    client: httpx.AsyncClient, services: Services, issuer_sim: IssuerSimulator
) -> None:
    _, key = await merchant_key(services)
    headers = auth(key, **{"Idempotency-Key": "race-1"})
    responses = await asyncio.gather(
        *(client.post("/v1/payments", json=payment_body(), headers=headers) for _ in range(12))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(issuer_sim.authorizations) == 1
    async with services.db.sessions() as session:
        assert len((await session.scalars(select(Payment))).all()) == 1


async def test_failed_card_check_is_replayed_too(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await merchant_key(services)
    headers = auth(key, **{"Idempotency-Key": "bad-card"})
    body = payment_body("4242424242424241")
    first = await client.post("/v1/payments", json=body, headers=headers)
    second = await client.post("/v1/payments", json=body, headers=headers)
    assert first.status_code == second.status_code == 402
    assert first.json()["id"] == second.json()["id"]
