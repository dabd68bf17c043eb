"""The dispatcher: sends due deliveries, retries with exponential backoff, records every
status change, and falls back from push to SMS.

Each delivery is claimed (``queued`` → ``sending``, with the time as a lease) before it is
sent, so two workers never send the same delivery; a claim older than the lease belongs to
a worker that died mid-send and is taken over. A delivery sent twice that way carries the
same delivery id, which receivers use to drop the repeat (HTTP ``Idempotency-Key``, e-mail
``Message-ID``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.catalog import Locale
from haetae.db.base import new_id
from haetae.db.engine import Database
from haetae.notify.channels.base import Channel, ChannelName, DeliveryError, OutgoingMessage
from haetae.notify.models import Customer, Delivery, DeliveryEvent, Notification
from haetae.notify.notices import thaw_context
from haetae.notify.templates import NoticeTemplates, fit_lms, sms_type

log = structlog.get_logger(__name__)
_DELIVERIES = cast(Table, Delivery.__table__)


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    batch: int = 200
    concurrency: int = 64
    max_attempts: int = 8
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    lease: timedelta = timedelta(seconds=60)
    push_ack_timeout: timedelta = timedelta(seconds=60)


def _mask(address: str | None) -> str:
    if not address:
        return "-"
    return address[:3] + "***" if len(address) > 6 else "***"


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        templates: NoticeTemplates,
        *,
        clock: Callable[[], datetime],
        settings: DispatchSettings = DispatchSettings(),
    ) -> None:
        self._db = db
        self._channels = channels
        self._templates = templates
        self._clock = clock
        self._settings = settings

    async def run_once(self) -> int:
        """Send what is due now; returns how many deliveries were attempted."""
        await self._fall_back_unacknowledged_pushes()
        claimed = await self._claim_due()
        if not claimed:
            return 0
        limit = asyncio.Semaphore(self._settings.concurrency)

        async def one(delivery_id: str) -> None:
            async with limit:
                await self._send(delivery_id)

        await asyncio.gather(*(one(d) for d in claimed))
        return len(claimed)

    async def run_forever(self, poll_seconds: float) -> None:
        while True:
            try:
                sent = await self.run_once()
            except Exception as exc:  # keep dispatching; the next round may succeed
                log.error("notify.dispatch_failed", error=repr(exc))
                sent = 0
            if not sent:
                await asyncio.sleep(poll_seconds)

    async def drain(self) -> int:
        total = 0
        while (count := await self.run_once()) > 0:
            total += count
        return total

    # --- claiming ---------------------------------------------------------------------

    async def _claim_due(self) -> list[str]:
        now = self._clock()
        columns = _DELIVERIES.c
        due = or_(
            (columns.status == "queued") & (columns.next_attempt_at <= now),
            (columns.status == "sending") & (columns.claimed_at < now - self._settings.lease),
        )
        async with self._db.transaction() as session:
            candidates = list(
                (
                    await session.scalars(
                        select(columns.id)
                        .where(due)
                        .order_by(columns.next_attempt_at)
                        .limit(self._settings.batch)
                    )
                ).all()
            )
            mine: list[str] = []
            for delivery_id in candidates:
                claimed = await session.execute(
                    update(_DELIVERIES)
                    .where(columns.id == delivery_id, due)
                    .values(status="sending", claimed_at=now)
                )
                if claimed.rowcount:  # type: ignore[attr-defined]
                    mine.append(delivery_id)
        return mine

    # --- sending ----------------------------------------------------------------------

    async def _send(self, delivery_id: str) -> None:
        async with self._db.sessions() as session:
            delivery = await session.get(Delivery, delivery_id)
            notification = (
                await session.get(Notification, delivery.notification_id) if delivery else None
            )
        if delivery is None or notification is None:
            return
        channel = self._channels.get(delivery.channel)
        if channel is None:
            await self._record(delivery, "failed", "channel_not_configured")
            return
        try:
            message = self._message(delivery, notification)
            result = await channel.send(message)
        except DeliveryError as error:
            await self._failed(delivery, error.reason, retryable=error.retryable)
            return
        except Exception as exc:  # a bug in an adapter must not stop the dispatcher
            log.error("notify.send_crashed", delivery_id=delivery.id, error=repr(exc))
            await self._failed(delivery, "internal_error", retryable=True)
            return
        await self._record(delivery, "sent", None, provider_id=result.provider_message_id)
        log.info(
            "notify.sent",
            delivery_id=delivery.id,
            channel=delivery.channel,
            to=_mask(delivery.address),
        )

    def _message(self, delivery: Delivery, notification: Notification) -> OutgoingMessage:
        locale: Locale = "en" if notification.locale == "en" else "ko"
        rendered = self._templates.render(
            notification.kind, locale, thaw_context(notification.context)
        )
        channel = cast(ChannelName, delivery.channel)
        if channel == "email":
            return OutgoingMessage(
                delivery.id,
                channel,
                delivery.address or "",
                rendered.title,
                rendered.long,
                html=rendered.html,
            )
        # SMS text is capped at the LMS maximum (2,000 bytes): customer-supplied values in a
        # notice (a device name, a case id) must not make it unsendable.
        text = fit_lms(rendered.short) if channel == "sms" else rendered.short
        return OutgoingMessage(
            delivery.id,
            channel,
            delivery.address or "",
            rendered.title,
            text,
            sms_type=sms_type(text) if channel == "sms" else None,
        )

    async def _failed(self, delivery: Delivery, reason: str, *, retryable: bool) -> None:
        attempts = delivery.attempts + 1
        if retryable and attempts < self._settings.max_attempts:
            delay = min(
                self._settings.backoff_cap_seconds,
                self._settings.backoff_base_seconds * 2 ** (attempts - 1),
            ) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
            await self._record(
                delivery, "queued", reason, retry_at=self._clock() + timedelta(seconds=delay)
            )
            return
        await self._record(delivery, "failed", reason)
        if delivery.channel == "push":
            await self._fall_back_to_sms(delivery.id)

    async def _record(
        self,
        delivery: Delivery,
        status: str,
        reason: str | None,
        *,
        provider_id: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        reason = reason[:200] if reason else None  # the column's width
        values: dict[str, Any] = {
            "status": status,
            "reason": reason,
            "claimed_at": None,
            "attempts": delivery.attempts + 1,
            "updated_at": self._clock(),  # the push acknowledgement timer counts from here
        }
        if provider_id is not None:
            values["provider_message_id"] = provider_id
        if retry_at is not None:
            values["next_attempt_at"] = retry_at
        async with self._db.transaction() as session:
            await session.execute(
                update(_DELIVERIES)
                .where(_DELIVERIES.c.id == delivery.id, _DELIVERIES.c.status == "sending")
                .values(values)
            )
            session.add(DeliveryEvent(delivery_id=delivery.id, status=status, reason=reason))

    # --- push → SMS ---------------------------------------------------------------------

    async def _fall_back_unacknowledged_pushes(self) -> None:
        cutoff = self._clock() - self._settings.push_ack_timeout
        async with self._db.sessions() as session:
            stale = list(
                (
                    await session.scalars(
                        select(Delivery.id).where(
                            Delivery.channel == "push",
                            Delivery.status == "sent",
                            Delivery.updated_at < cutoff,
                        )
                    )
                ).all()
            )
        for delivery_id in stale:
            await self._fall_back_to_sms(delivery_id, unacknowledged=True)

    async def _fall_back_to_sms(self, push_id: str, *, unacknowledged: bool = False) -> None:
        now = self._clock()
        async with self._db.transaction() as session:
            push = await session.get(Delivery, push_id, with_for_update=True)
            if push is None:
                return
            if unacknowledged:
                if push.status != "sent":
                    return
                push.status, push.reason = "failed", "not_acknowledged"
                session.add(DeliveryEvent(delivery_id=push.id, status="failed", reason=push.reason))
            if await self._has_fallback(session, push.id):
                return
            notification = await session.get(Notification, push.notification_id)
            if notification is None:
                return
            customer = await session.get(Customer, notification.customer_id)
            phone = customer.phone if customer else None
            sms = Delivery(
                id=new_id("dlv"),
                notification_id=push.notification_id,
                channel="sms",
                address=phone,
                status="queued" if phone else "suppressed",
                reason=None if phone else "no_address",
                attempts=0,
                next_attempt_at=now,
                fallback_of=push.id,
                created_at=now,
            )
            session.add(sms)
            session.add(DeliveryEvent(delivery_id=sms.id, status=sms.status, reason=sms.reason))

    @staticmethod
    async def _has_fallback(session: AsyncSession, push_id: str) -> bool:
        existing = await session.scalar(select(Delivery.id).where(Delivery.fallback_of == push_id))
        return existing is not None
