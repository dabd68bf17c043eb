"""The console's checkout page and its JSON endpoints, through the real app."""

from __future__ import annotations

import re

import httpx

from haetae.issuer_sim.cards import STEP_UP_CARD
from haetae.issuer_sim.server import IssuerSimulator
from haetae.services import Services
from tests.helpers import payment_body

CUSTOMER = "demo-cust-1"


def _body(number: str = "4242 4242 4242 4242", **overrides: object) -> dict[str, object]:
    return payment_body(number, customer_id=CUSTOMER, **overrides)


async def test_landing_page_links_to_the_demo_and_operations(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for href in ('href="/checkout', 'href="/docs"', 'href="/healthz"', 'href="/metrics"'):
        assert href in response.text
    assert 'href="/console/certificates?lang=ko"' in response.text
    assert 'href="/demo/inbox/demo-kim?lang=ko"' in response.text


async def test_checkout_page_renders_the_form(client: httpx.AsyncClient) -> None:
    response = await client.get("/checkout")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="ko">' in html
    assert "15,000원" in html
    for field in ("card-number", "card-expiry", "card-cvc", "card-birth", "card-password2", "otp"):
        assert f'id="{field}"' in html
    assert 'autocomplete="cc-number"' in html and 'inputmode="numeric"' in html
    assert 'aria-live="polite"' in html
    assert '<script src="/static/checkout.js"' in html

    english = await client.get("/checkout", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.text and "Pay KRW 15,000" in english.text
    toggled = await client.get("/checkout?lang=en", headers={"Accept-Language": "ko"})
    assert '<html lang="en">' in toggled.text


async def test_static_files_are_served_by_name_only(client: httpx.AsyncClient) -> None:
    css = await client.get("/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = await client.get("/static/checkout.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert (await client.get("/static/routes.py")).status_code == 404
    assert (await client.get("/static/..%2Froutes.py")).status_code == 404


async def test_good_card_is_approved_without_an_api_key(
    client: httpx.AsyncClient, issuer_sim: IssuerSimulator
) -> None:
    response = await client.post(
        "/console/checkout/payments", json=_body(), headers={"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "approved"
    assert body["card"]["masked"] == "424242******4242"
    assert body["approval_code"]

    replay = await client.post(
        "/console/checkout/payments", json=_body(), headers={"Idempotency-Key": "k-1"}
    )
    assert replay.status_code == 201 and replay.json()["id"] == body["id"]


async def test_bad_luhn_number_answers_with_the_korean_catalog_message(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/console/checkout/payments", json=_body("4242 4242 4242 4241"))
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["code"] == "card_number_invalid"
    assert error["field"] == "card.number"
    assert error["message"] == "카드 번호가 올바르지 않습니다."
    assert error["next_step"]

    english = await client.post(
        "/console/checkout/payments",
        json=_body("4242 4242 4242 4241"),
        headers={"Accept-Language": "en"},
    )
    assert english.json()["error"]["message"] == "The card number is not valid."


async def test_malformed_body_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/console/checkout/payments", json=_body(amount="15000"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "request_invalid"
    assert error["field"] == "amount"

    response = await client.post("/console/checkout/payments", json=_body(card={"exp_month": "12"}))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "card.exp_month"


async def test_step_up_with_the_code_from_the_demo_inbox(
    client: httpx.AsyncClient, issuer_sim: IssuerSimulator
) -> None:
    created = await client.post("/console/checkout/payments", json=_body(STEP_UP_CARD))
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["status"] == "challenge_required"
    assert payment["challenge"]["method"] == "inbox"

    inbox = await client.get(f"/console/demo/inbox/{CUSTOMER}")
    assert inbox.status_code == 200
    items = inbox.json()["items"]
    assert items and items[0]["kind"] == "payment_otp"
    assert set(items[0]) == {"id", "kind", "title", "body", "created_at"}
    match = re.search(r"\b(\d{6})\b", items[0]["body"])
    assert match, items[0]["body"]
    code = match.group(1)

    url = f"/console/checkout/payments/{payment['id']}/challenge"
    wrong = "000000" if code != "000000" else "111111"
    retry = await client.post(url, json={"otp": wrong})
    assert retry.status_code == 402
    assert retry.json()["status"] == "challenge_required"
    assert retry.json()["error"]["field"] == "otp"

    done = await client.post(url, json={"otp": code})
    assert done.status_code == 201, done.text
    assert done.json()["status"] == "approved"
    assert done.json()["approval_code"]


async def test_demo_inbox_answers_only_for_demo_customers(
    client: httpx.AsyncClient, services: Services
) -> None:
    assert (await client.get("/console/demo/inbox/cust-1")).status_code == 404
    empty = await client.get("/console/demo/inbox/demo-nobody")
    assert empty.status_code == 200 and empty.json() == {"items": []}


async def test_demo_routes_do_not_exist_outside_demo_mode(
    client: httpx.AsyncClient, services: Services
) -> None:
    services.settings.demo = False
    assert (await client.get("/checkout")).status_code == 404
    assert (await client.get("/console/demo/inbox/demo-1")).status_code == 404
    paid = await client.post("/console/checkout/payments", json=_body("4242424242424242"))
    assert paid.status_code == 404
    assert (await client.get("/")).status_code == 200  # the console itself stays


async def test_the_demo_only_pays_for_demo_customers(
    client: httpx.AsyncClient, services: Services
) -> None:
    response = await client.post(
        "/console/checkout/payments", json=payment_body(customer_id="real-customer-42")
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "customer_id"
