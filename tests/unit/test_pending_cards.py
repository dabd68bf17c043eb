"""The card waiting for a step-up code: taken once, gone when expired, and a Redis that
cannot be reached makes the step-up fail as expired, never the request."""

from __future__ import annotations

import asyncio

from haetae.payments.connectors.base import CardDetails
from haetae.payments.pending_cards import MemoryPendingCards, RedisPendingCards

CARD = CardDetails(pan="4000000000003220", exp_month=12, exp_year=2030, cvc="737")


async def test_a_card_in_memory_is_taken_once_and_not_after_it_expired() -> None:
    cards = MemoryPendingCards()
    await cards.put("pay_1", CARD, ttl_seconds=60)
    assert await cards.take("pay_1") == CARD
    assert await cards.take("pay_1") is None
    await cards.put("pay_2", CARD, ttl_seconds=0.05)
    await asyncio.sleep(0.1)
    assert await cards.take("pay_2") is None
    await cards.put("pay_3", CARD, ttl_seconds=60)
    await cards.discard("pay_3")
    assert await cards.take("pay_3") is None


async def test_an_unreachable_redis_loses_the_step_up_not_the_request() -> None:
    cards = RedisPendingCards.from_url("redis://127.0.0.1:1/0", bytes(32), timeout=0.2)
    try:
        await cards.put("pay_1", CARD, ttl_seconds=60)  # logged, not raised
        assert await cards.take("pay_1") is None  # the answer then fails as expired
        await cards.discard("pay_1")
    finally:
        await cards.close()
