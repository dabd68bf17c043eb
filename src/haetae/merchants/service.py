"""Merchant use cases other domains call."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.db.base import new_id
from haetae.merchants.models import CardPolicy, Merchant


async def get_or_create_merchant(
    session: AsyncSession, name: str, *, card_policy: CardPolicy | None = None
) -> Merchant:
    """The merchant called ``name``, created with ``card_policy`` (default ``none``) if new.
    An existing merchant's policy changes only when one is given explicitly."""
    merchant = await session.scalar(select(Merchant).where(Merchant.name == name))
    if merchant is None:
        merchant = Merchant(id=new_id("mer"), name=name, card_policy=card_policy or "none")
        session.add(merchant)
        await session.flush()
    elif card_policy is not None and merchant.card_policy != card_policy:
        merchant.card_policy = card_policy
    return merchant
