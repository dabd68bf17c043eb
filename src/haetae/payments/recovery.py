"""Finishing payments an interrupted process or an absent customer left half-way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.catalog import Catalog, Locale
from haetae.db.engine import Database
from haetae.payments.idempotency import IdempotencyKeys, find_by_payment
from haetae.payments.issuers import IssuerRouter, stuck_before
from haetae.payments.models import Payment, PaymentChallenge
from haetae.payments.outcomes import add_payment_event, fail, result_of
from haetae.payments.pending_cards import PendingCards

log = structlog.get_logger(__name__)


class PaymentRecovery:
    def __init__(
        self,
        *,
        db: Database,
        catalog: Catalog,
        issuers: IssuerRouter,
        pending_cards: PendingCards,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._issuers = issuers
        self._pending = pending_cards
        self._clock = clock

    async def fail_interrupted(self) -> int:
        """Payments left ``authorizing`` by a process that died while the issuer was being
        asked: the customer was never answered, so fail them as a timeout, owe the issuer a
        reversal, and give their Idempotency-Key the failed response to replay."""
        timeout = max(issuer.settings.timeout_seconds for issuer in self._issuers.issuers)
        cutoff = stuck_before(self._clock(), timeout)
        async with self._db.sessions() as session:
            stuck = list(
                (
                    await session.scalars(
                        select(Payment.id).where(
                            Payment.status == "authorizing", Payment.transmitted_at < cutoff
                        )
                    )
                ).all()
            )
        for payment_id in stuck:
            async with self._db.transaction() as session:
                payment = await session.get(Payment, payment_id, with_for_update=True)
                if payment is None or payment.status != "authorizing":
                    continue
                fail(payment, "failed", "issuer_timeout", None)
                payment.reversal_status, payment.reversal_reason = "pending", "timeout"
                add_payment_event(session, payment, self._clock())
                await self._complete_key_of(session, payment)
            log.warning("payment.interrupted", payment_id=payment_id)
        return len(stuck)

    async def expire_challenges(self) -> int:
        """Step-ups nobody completed in time become ``failed`` (challenge_expired)."""
        now = self._clock()
        async with self._db.sessions() as session:
            expired = list(
                (
                    await session.scalars(
                        select(PaymentChallenge.payment_id).where(
                            PaymentChallenge.status == "pending",
                            PaymentChallenge.expires_at < now,
                        )
                    )
                ).all()
            )
        for payment_id in expired:
            async with self._db.transaction() as session:
                payment = await session.get(Payment, payment_id, with_for_update=True)
                challenge = await session.get(PaymentChallenge, payment_id, with_for_update=True)
                if payment is None or challenge is None or challenge.status != "pending":
                    continue
                challenge.status = "failed"
                if payment.status == "challenge_required":
                    fail(payment, "failed", "challenge_expired", None)
                    add_payment_event(session, payment, now)
            await self._pending.discard(payment_id)
        return len(expired)

    async def _complete_key_of(self, session: AsyncSession, payment: Payment) -> None:
        record = await find_by_payment(session, payment.id)
        if record is not None and record.status == "in_progress":
            locale: Locale = "en" if payment.locale == "en" else "ko"
            result = result_of(payment, self._catalog, locale)
            await IdempotencyKeys.complete(
                session,
                payment.merchant_id,
                record.key,
                result.stored_response(),
            )
