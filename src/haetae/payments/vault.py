"""The card vault: card numbers kept only for merchants whose policy is ``vault``.

Envelope encryption: each number is sealed with AES-256-GCM under a data key; data keys are
stored wrapped by the master key, which lives outside the database. Rotation makes a new
data key, re-seals every card under it and retires the old keys.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.db.base import new_id, utcnow
from haetae.payments.models import VaultCard
from haetae.security.card_crypto import CardSecrets, decrypt, encrypt, new_data_key
from haetae.security.models import VaultKey


class CardVault:
    def __init__(self, card_secrets: CardSecrets) -> None:
        self._secrets = card_secrets
        self._data_keys: dict[str, bytes] = {}

    async def _data_key(self, session: AsyncSession, key_id: str) -> bytes:
        key = self._data_keys.get(key_id)
        if key is None:
            row = await session.get(VaultKey, key_id)
            if row is None:
                raise LookupError(f"vault key {key_id} is missing")
            key = self._secrets.unwrap(row.wrapped_key)
            self._data_keys[key_id] = key
        return key

    async def _active_key(self, session: AsyncSession) -> tuple[str, bytes]:
        row = await session.scalar(
            select(VaultKey).where(VaultKey.active.is_(True)).order_by(VaultKey.created_at.desc())
        )
        if row is None:
            return await self._create_key(session)
        return row.id, await self._data_key(session, row.id)

    async def _create_key(self, session: AsyncSession) -> tuple[str, bytes]:
        key = new_data_key()
        key_id = new_id("vk")
        session.add(VaultKey(id=key_id, wrapped_key=self._secrets.wrap(key), active=True))
        await session.flush()
        self._data_keys[key_id] = key
        return key_id, key

    async def store(
        self,
        session: AsyncSession,
        *,
        merchant_id: str,
        pan: str,
        fingerprint: str,
        brand: str,
        masked: str,
        exp_month: int,
        exp_year: int,
    ) -> str:
        """Seal the number and return its token; the same card at the same merchant keeps
        its token (its expiry is refreshed)."""
        existing = await session.scalar(
            select(VaultCard).where(
                VaultCard.merchant_id == merchant_id, VaultCard.fingerprint == fingerprint
            )
        )
        if existing is not None:
            existing.exp_month, existing.exp_year = exp_month, exp_year
            return existing.token
        key_id, key = await self._active_key(session)
        token = "tok_" + secrets.token_urlsafe(18)
        session.add(
            VaultCard(
                token=token,
                merchant_id=merchant_id,
                fingerprint=fingerprint,
                key_id=key_id,
                ciphertext=encrypt(key, pan, token),
                brand=brand,
                masked=masked,
                exp_month=exp_month,
                exp_year=exp_year,
            )
        )
        return token

    async def reveal(self, session: AsyncSession, token: str) -> str:
        card = await session.get(VaultCard, token)
        if card is None:
            raise LookupError("no such token")
        return decrypt(await self._data_key(session, card.key_id), card.ciphertext, token)

    async def rotate(
        self, session: AsyncSession, on_progress: Callable[[int, int], None] | None = None
    ) -> tuple[str, int]:
        """New data key; every card re-sealed under it; old keys retired. One transaction,
        so a crash leaves either the old state or the new, never a mix."""
        old_keys = list(
            (await session.scalars(select(VaultKey.id).where(VaultKey.active.is_(True)))).all()
        )
        await session.execute(update(VaultKey).values(active=False, retired_at=utcnow()))
        new_key_id, new_key = await self._create_key(session)
        total = await session.scalar(select(func.count()).select_from(VaultCard)) or 0
        done = 0
        cards = await session.stream_scalars(
            select(VaultCard).where(VaultCard.key_id != new_key_id).execution_options(yield_per=500)
        )
        async for card in cards:
            pan = decrypt(await self._data_key(session, card.key_id), card.ciphertext, card.token)
            card.ciphertext = encrypt(new_key, pan, card.token)
            card.key_id = new_key_id
            done += 1
            if on_progress is not None:
                on_progress(done, total)
        for key_id in old_keys:
            self._data_keys.pop(key_id, None)
        return new_key_id, done

    async def rewrap(self, session: AsyncSession, new_secrets: CardSecrets) -> int:
        """Re-wrap every data key under a new master key (the cards stay as they are). Each
        key is checked to unwrap under the new master before the transaction commits."""
        rows = list((await session.scalars(select(VaultKey))).all())
        for row in rows:
            data_key = self._secrets.unwrap(row.wrapped_key)
            row.wrapped_key = new_secrets.wrap(data_key)
            if new_secrets.unwrap(row.wrapped_key) != data_key:
                raise RuntimeError(f"re-wrapping vault key {row.id} did not round-trip")
        self._secrets = new_secrets
        return len(rows)
