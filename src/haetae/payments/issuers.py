"""Routing a card to its issuer's connection, and reversals owed to issuers."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import structlog
from sqlalchemy import select

from haetae.bus.outbox import add_event
from haetae.config import IssuerSettings
from haetae.db.engine import Database
from haetae.payments.connectors.base import IssuerConnector, IssuerError, ReversalRequest
from haetae.payments.models import Payment

log = structlog.get_logger(__name__)

_RRN_ALPHABET = string.digits + string.ascii_uppercase


def new_rrn() -> str:
    """12 alphanumeric characters (field 37): 36^12 values, so random ones do not collide."""
    return "".join(secrets.choice(_RRN_ALPHABET) for _ in range(12))


@dataclass(frozen=True)
class Issuer:
    settings: IssuerSettings
    connector: IssuerConnector


class IssuerRouter:
    """The issuer whose longest BIN prefix matches the card; one with no prefixes takes the
    rest."""

    def __init__(self, issuers: list[Issuer]) -> None:
        if not issuers:
            raise ValueError("at least one issuer must be configured")
        self._issuers = issuers
        self._by_name = {issuer.settings.name: issuer for issuer in issuers}

    def route(self, pan: str) -> Issuer:
        best: tuple[int, Issuer] | None = None
        fallback: Issuer | None = None
        for issuer in self._issuers:
            if not issuer.settings.bin_prefixes:
                fallback = fallback or issuer
            for prefix in issuer.settings.bin_prefixes:
                if pan.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), issuer)
        chosen = best[1] if best else fallback
        return chosen if chosen is not None else self._issuers[0]

    @property
    def issuers(self) -> list[Issuer]:
        return list(self._issuers)

    def by_name(self, name: str) -> Issuer:
        return self._by_name[name]

    async def close(self) -> None:
        for issuer in self._issuers:
            await issuer.connector.close()


def reversal_request(payment: Payment) -> ReversalRequest:
    assert payment.rrn is not None and payment.transmitted_at is not None
    return ReversalRequest(
        rrn=payment.rrn,
        stan=payment.stan,
        amount=payment.amount,
        currency=payment.currency,
        merchant_id=payment.merchant_id,
        original_transmitted_at=payment.transmitted_at,
    )


class ReversalWorker:
    """Sends the reversals owed to issuers until each is acknowledged.

    A reversal is recorded as owed (``reversal_status = pending``) in the same transaction
    that reports the payment as failed after a timeout, or that starts a cancel, so a crash
    cannot lose it: :meth:`sweep` finds every owed reversal in the database.
    """

    def __init__(self, db: Database, router: IssuerRouter, *, clock: Callable[[], datetime]):
        self._db = db
        self._router = router
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, payment_id: str) -> None:
        task = asyncio.create_task(self._reverse_with_retries(payment_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reverse_with_retries(self, payment_id: str) -> None:
        delay = 0.2
        while True:
            done, attempts, limit = await self.reverse_once(payment_id)
            if done or attempts >= limit:
                return  # what is still owed is left to the sweep
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def reverse_once(self, payment_id: str) -> tuple[bool, int, int]:
        """One attempt: (acknowledged, attempts so far, attempt limit). A cancel that is
        acknowledged leaves the payment ``cancelled``."""
        async with self._db.sessions() as session:
            payment = await session.get(Payment, payment_id)
        if payment is None or payment.reversal_status != "pending":
            return True, 0, 0
        issuer = self._router.by_name(payment.issuer_name or "")
        limit = issuer.settings.reversal_attempts
        reason: Literal["timeout", "cancel"] = (
            "cancel" if payment.reversal_reason == "cancel" else "timeout"
        )
        acknowledged = False
        try:
            reply = await issuer.connector.reverse(reversal_request(payment), reason=reason)
            acknowledged = reply.response_code in ("00", "25")  # 25: original not found
        except IssuerError as exc:
            log.warning("payment.reversal_failed", payment_id=payment_id, error=repr(exc))
        async with self._db.transaction() as session:
            row = await session.get(Payment, payment_id, with_for_update=True)
            if row is None or row.reversal_status != "pending":
                return True, 0, limit
            row.reversal_attempts += 1
            if acknowledged:
                row.reversal_status = "done"
                topic = "payment.reversed"
                if reason == "cancel":
                    row.status, row.cancelled_at = "cancelled", self._clock()
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
                        "occurred_at": self._clock().isoformat(),
                    },
                )
            attempts = row.reversal_attempts
        log.info("payment.reversal", payment_id=payment_id, ok=acknowledged, attempts=attempts)
        return acknowledged, attempts, limit

    async def sweep(self) -> int:
        """Retry every reversal still owed; returns how many were acknowledged."""
        async with self._db.sessions() as session:
            owed = list(
                (
                    await session.scalars(
                        select(Payment.id).where(Payment.reversal_status == "pending")
                    )
                ).all()
            )
        acknowledged = 0
        for payment_id in owed:
            done, _, _ = await self.reverse_once(payment_id)
            acknowledged += done
        return acknowledged

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_idle(self) -> None:
        """Wait for scheduled reversals to finish (tests use this)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))


def stuck_before(now: datetime, timeout_seconds: float) -> datetime:
    """An authorization older than this was in flight when its process died."""
    return now - timedelta(seconds=max(timeout_seconds * 3, 30.0))
