"""Small helpers the tests share."""

from __future__ import annotations

import socket
from typing import Any

from haetae.merchants.models import CardPolicy
from haetae.merchants.service import get_or_create_merchant
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
