"""Step-up cards held in the real Redis: encrypted, expiring, taken once, and shared by API
processes, so that one process completes a step-up another started. Unreachable Redis
fails the run."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as redis

from haetae.app import create_app
from haetae.config import Settings
from haetae.issuer_sim.cards import STEP_UP_CARD
from haetae.issuer_sim.server import IssuerSimulator
from haetae.payments.connectors.base import CardDetails
from haetae.payments.pending_cards import RedisPendingCards
from haetae.security.card_crypto import CardSecrets
from haetae.services import build_services
from tests.conftest import Clock, stop_or_show_what_hangs
from tests.helpers import auth, merchant_key, payment_body, service_key

pytestmark = pytest.mark.integration

# A database of its own on the test Redis, emptied before and after: the services built
# here keep their feature store in Redis too.
_BASE = os.environ.get("HAETAE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_URL = urlsplit(_BASE)._replace(path="/9").geturl()

CARD = CardDetails(
    pan="4000000000003220",
    exp_month=12,
    exp_year=2030,
    cvc="737",
    birth_or_business_no="880101",
    password_2digits="12",
)


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        await connection.flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis unreachable at {REDIS_URL}: {exc}")
    yield connection
    await connection.flushdb()
    await connection.aclose()


async def test_what_redis_holds_is_unreadable_expiring_and_taken_once(
    client: redis.Redis, settings: Settings
) -> None:
    secrets = CardSecrets.from_settings(settings)
    cards = RedisPendingCards.from_url(REDIS_URL, secrets.encryption_key("pending-cards"))
    try:
        await cards.put("pay_1", CARD, ttl_seconds=300)
        stored = await client.get(RedisPendingCards.PREFIX + "pay_1")
        assert stored is not None
        for secret in (CARD.pan, CARD.pan[-8:], "737", "880101", "4000 0000"):
            assert secret.encode() not in stored
        assert 0 < await client.pttl(RedisPendingCards.PREFIX + "pay_1") <= 300_000
        # The entry is bound to its payment: copied under another id, it does not open.
        await client.set(RedisPendingCards.PREFIX + "pay_2", stored)
        assert await cards.take("pay_2") is None
        assert await cards.take("pay_1") == CARD
        assert await cards.take("pay_1") is None  # once
        assert await client.exists(RedisPendingCards.PREFIX + "pay_1") == 0
        # Another master key (another deployment, or a rotated key) cannot read it either.
        await cards.put("pay_3", CARD, ttl_seconds=300)
        stranger = RedisPendingCards.from_url(REDIS_URL, bytes(32))
        assert await stranger.take("pay_3") is None
        await stranger.close()
    finally:
        await cards.close()


async def _code(client: httpx.AsyncClient, ops_key: str) -> str:
    inbox = await client.get("/v1/customers/cust-1/inbox", headers=auth(ops_key))
    match = re.search(r"\b(\d{6})\b", inbox.json()["items"][0]["body"])
    assert match, inbox.text
    return match.group(1)


async def _complete_elsewhere(settings: Settings, clock: Clock) -> dict[str, Any]:
    """A step-up started through one API process and answered through another (two sets of
    services on one database), as behind a load balancer; returns the answer's body."""
    one, other = build_services(settings, clock=clock), build_services(settings, clock=clock)
    await one.start()
    await other.start()
    try:
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(settings, one)),
                base_url="http://one.test",
            ) as first,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(settings, other)),
                base_url="http://other.test",
            ) as second,
        ):
            _, key = await merchant_key(one)
            ops = await service_key(one, "notify")
            created = await first.post(
                "/v1/payments", json=payment_body(STEP_UP_CARD), headers=auth(key)
            )
            assert created.json()["status"] == "challenge_required", created.text
            answer = await second.post(
                f"/v1/payments/{created.json()['id']}/challenge",
                json={"otp": await _code(first, ops)},
                headers=auth(key),
            )
            body: dict[str, Any] = answer.json()
            return body
    finally:
        for services in (one, other):
            await stop_or_show_what_hangs(services.stop(), "the services")


async def test_another_api_process_completes_the_step_up(
    client: redis.Redis, settings: Settings, clock: Clock, issuer_sim: IssuerSimulator
) -> None:
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    answer = await _complete_elsewhere(shared, clock)
    assert answer["status"] == "approved", answer
    assert [a.response_code for a in issuer_sim.authorizations] == ["1A", "00"]
    assert await client.keys(RedisPendingCards.PREFIX + "*") == []  # taken, not left behind


async def test_without_redis_another_process_finds_no_card(
    settings: Settings, clock: Clock, issuer_sim: IssuerSimulator
) -> None:
    """The embedded default holds the card in the process that took the payment: answered
    elsewhere, the step-up cannot go on (ADR 0002), which the Redis holder above fixes."""
    answer = await _complete_elsewhere(settings, clock)
    assert answer["status"] == "failed"
    assert answer["error"]["code"] == "challenge_expired"
