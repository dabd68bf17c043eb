"""Demo data for `haetae serve --demo`: a merchant of each card policy, and keys."""

from __future__ import annotations

from dataclasses import dataclass

from haetae.db.engine import Database
from haetae.merchants.service import get_or_create_merchant
from haetae.security.api_keys import ALL_SCOPES, create_api_key

DEMO_MERCHANT = "demo-shop"
DEMO_VAULT_MERCHANT = "demo-subscriptions"


@dataclass(frozen=True)
class DemoKeys:
    merchant_key: str
    vault_merchant_key: str
    admin_key: str


async def seed_demo(db: Database) -> DemoKeys:
    async with db.transaction() as session:
        shop = await get_or_create_merchant(session, DEMO_MERCHANT, card_policy="none")
        subs = await get_or_create_merchant(session, DEMO_VAULT_MERCHANT, card_policy="vault")
        merchant_key = await create_api_key(
            session,
            kind="merchant",
            name=f"{DEMO_MERCHANT} demo",
            scopes=["payments"],
            merchant_id=shop.id,
        )
        vault_key = await create_api_key(
            session,
            kind="merchant",
            name=f"{DEMO_VAULT_MERCHANT} demo",
            scopes=["payments"],
            merchant_id=subs.id,
        )
        admin_key = await create_api_key(
            session, kind="service", name="demo console", scopes=list(ALL_SCOPES)
        )
    return DemoKeys(merchant_key, vault_key, admin_key)
