"""Reversals owed to issuers, sent until acknowledged, and never by two senders at once.

A reversal is recorded as owed (``reversal_status = pending``) in the same transaction that
reports a payment as failed after a timeout, or that starts a cancel, so a crash cannot lose
it. Whoever sends it (the retry task after a timeout, a cancel, or the periodic sweep in any
process) first claims the row: ``pending`` → ``sending``, with the time as a lease, so the
issuer gets each attempt once. A claim older than the lease belongs to a process that died
mid-send and may be taken over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

import structlog
from sqlalchemy import Select, Table, or_, select, text, update

from haetae.bus.outbox import add_event
from haetae.db.engine import Database
from haetae.payments.connectors.base import IssuerError, IssuerReply
from haetae.payments.issuers import IssuerRouter, reversal_request
from haetae.payments.models import REVERSAL_OWED, Payment

log = structlog.get_logger(__name__)

_PAYMENTS = cast(Table, Payment.__table__)
SEND_LEASE = timedelta(seconds=60)
ACKNOWLEDGED = ("00", "25")  # 25: "original not found" — nothing left to undo


def owed_reversals(now: datetime) -> Select[str]:
    """The payments whose reversal is owed and not being sent (or whose sender's lease ran
    out), through the partial index of owed reversals (a test reads the plan)."""
    return select(Payment.id).where(
        text(REVERSAL_OWED),
        or_(
            Payment.reversal_status == "pending",
            (Payment.reversal_status == "sending") & (Payment.updated_at < now - SEND_LEASE),
        ),
    )


@dataclass(frozen=True, slots=True)
class ReversalAttempt:
    sent: bool  # False: another sender holds the claim, or nothing is owed
    acknowledged: bool = False
    attempts: int = 0
    limit: int = 0


class ReversalWorker:
    def __init__(
        self,
        db: Database,
        router: IssuerRouter,
        *,
        clock: Callable[[], datetime],
        sweep_concurrency: int = 8,
    ) -> None:
        self._db = db
        self._router = router
        self._clock = clock
        self._sweep_concurrency = sweep_concurrency
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, payment_id: str) -> None:
        task = asyncio.create_task(self._reverse_with_retries(payment_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reverse_with_retries(self, payment_id: str) -> None:
        delay = 0.2
        try:
            while True:
                attempt = await self.reverse_once(payment_id)
                if not attempt.sent or attempt.acknowledged or attempt.attempts >= attempt.limit:
                    return  # what is still owed is left to the sweep
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        except Exception as exc:  # the sweep will find the reversal still owed
            log.error("payment.reversal_task_failed", payment_id=payment_id, error=repr(exc))

    async def _claim(self, payment_id: str) -> Payment | None:
        now = self._clock()
        async with self._db.transaction() as session:
            claimed = await session.execute(
                update(_PAYMENTS)
                .where(
                    _PAYMENTS.c.id == payment_id,
                    or_(
                        _PAYMENTS.c.reversal_status == "pending",
                        (_PAYMENTS.c.reversal_status == "sending")
                        & (_PAYMENTS.c.updated_at < now - SEND_LEASE),
                    ),
                )
                .values(reversal_status="sending", updated_at=now)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                return None
            return await session.get(Payment, payment_id)

    async def reverse_once(self, payment_id: str) -> ReversalAttempt:
        """Claim, send one 0400, record the outcome. An explicit refusal counts towards the
        issuer's attempt limit, after which the reversal is ``failed`` and needs a person; an
        unreachable issuer is retried for as long as it takes."""
        payment = await self._claim(payment_id)
        if payment is None:
            return ReversalAttempt(sent=False)
        reason: Literal["timeout", "cancel"] = (
            "cancel" if payment.reversal_reason == "cancel" else "timeout"
        )
        reply: IssuerReply | None = None
        limit = 1
        try:
            issuer = self._router.by_name(payment.issuer_name or "")
            limit = issuer.settings.reversal_attempts
            reply = await issuer.connector.reverse(reversal_request(payment), reason=reason)
        except IssuerError as exc:
            log.warning("payment.reversal_unanswered", payment_id=payment_id, error=repr(exc))
        except Exception as exc:  # e.g. an issuer removed from the configuration
            log.error("payment.reversal_not_sent", payment_id=payment_id, error=repr(exc))
        return await self._record(payment, reason, reply, limit)

    async def _record(
        self,
        payment: Payment,
        reason: Literal["timeout", "cancel"],
        reply: IssuerReply | None,
        limit: int,
    ) -> ReversalAttempt:
        acknowledged = reply is not None and reply.response_code in ACKNOWLEDGED
        now = self._clock()
        async with self._db.transaction() as session:
            row = await session.get(Payment, payment.id, with_for_update=True)
            assert row is not None
            row.reversal_attempts += 1
            if acknowledged:
                row.reversal_status = "done"
                topic = "payment.reversed"
                if reason == "cancel":
                    row.status, row.cancelled_at = "cancelled", now
                    topic = "payment.cancelled"
                add_event(
                    session,
                    topic,
                    {
                        "payment_id": row.id,
                        "merchant_id": row.merchant_id,
                        "customer_id": row.customer_id,
                        "amount": row.amount,
                        "currency": row.currency,
                        "reason": reason,
                        "occurred_at": now.isoformat(),
                    },
                )
            elif reply is not None and row.reversal_attempts >= limit:
                row.reversal_status = "failed"
                log.error(
                    "payment.reversal_refused",
                    payment_id=row.id,
                    response_code=reply.response_code,
                    attempts=row.reversal_attempts,
                )
            else:
                row.reversal_status = "pending"
            attempts = row.reversal_attempts
        log.info("payment.reversal", payment_id=payment.id, ok=acknowledged, attempts=attempts)
        return ReversalAttempt(True, acknowledged, attempts, limit)

    async def sweep(self) -> int:
        """Send every reversal still owed (a few at a time, so that one slow issuer does not
        hold up the rest); returns how many were acknowledged."""
        async with self._db.sessions() as session:
            owed = list((await session.scalars(owed_reversals(self._clock()))).all())
        limit = asyncio.Semaphore(self._sweep_concurrency)

        async def one(payment_id: str) -> bool:
            async with limit:
                try:
                    return (await self.reverse_once(payment_id)).acknowledged
                except Exception as exc:
                    log.error("payment.reversal_failed", payment_id=payment_id, error=repr(exc))
                    return False

        return sum(await asyncio.gather(*(one(payment_id) for payment_id in owed)))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait for scheduled reversals to finish (tests use this)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))
