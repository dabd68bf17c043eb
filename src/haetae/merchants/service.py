"""Merchant use cases other domains call."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.db.base import new_id
from haetae.merchants.models import CardPolicy, Merchant


async def get_merchant(session: AsyncSession, merchant_id: str) -> Merchant | None:
    return await session.get(Merchant, merchant_id)


async def get_or_create_merchant(
    session: AsyncSession, name: str, *, card_policy: CardPolicy = "none"
) -> Merchant:
    merchant = await session.scalar(select(Merchant).where(Merchant.name == name))
    if merchant is None:
        merchant = Merchant(id=new_id("mer"), name=name, card_policy=card_policy)
        session.add(merchant)
        await session.flush()
    elif merchant.card_policy != card_policy:
        merchant.card_policy = card_policy
    return merchant
