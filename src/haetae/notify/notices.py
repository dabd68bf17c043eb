"""Sending a notice: one notification and one delivery per channel, written in the caller's
transaction (so a notice exists exactly when the state change that caused it commits). The
deliveries table is the durable queue the dispatcher works from; the in-app inbox is written
at once, in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.bus.outbox import add_event
from haetae.catalog import Locale
from haetae.db.base import new_id
from haetae.notify.channels.base import ChannelName
from haetae.notify.models import ChannelPreference, Customer, Delivery, DeliveryEvent, Notification
from haetae.notify.policy import Category, decide
from haetae.notify.service import post_to_inbox
from haetae.notify.templates import NoticeTemplates

DEFAULT_CHANNELS: tuple[ChannelName, ...] = ("inbox", "push", "email")


@dataclass(frozen=True, slots=True)
class NoticeLimits:
    dedup_window: timedelta = timedelta(minutes=10)
    # Non-security notices per customer per hour; security notices are never held back.
    per_customer_per_hour: int = 20


_DATETIME = "__datetime__"


def freeze_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """For the JSON column: datetimes become tagged ISO strings (templates format them)."""
    return {
        key: {_DATETIME: value.isoformat()} if isinstance(value, datetime) else value
        for key, value in context.items()
    }


def thaw_context(stored: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: datetime.fromisoformat(value[_DATETIME])
        if isinstance(value, dict) and set(value) == {_DATETIME}
        else value
        for key, value in stored.items()
    }


def _address(customer_id: str, customer: Customer | None, channel: ChannelName) -> str | None:
    if channel == "inbox":
        return customer_id  # the app's inbox needs no contact details
    if customer is None:
        return None
    return {"push": customer.push_token, "sms": customer.phone, "email": customer.email}[channel]


async def send_notice(
    session: AsyncSession,
    templates: NoticeTemplates,
    *,
    customer_id: str,
    kind: str,
    category: Category,
    context: Mapping[str, Any],
    now: datetime,
    channels: Sequence[ChannelName] = DEFAULT_CHANNELS,
    dedup_key: str | None = None,
    limits: NoticeLimits = NoticeLimits(),
    default_locale: Locale = "ko",
    subject: str | None = None,
) -> str:
    """Queue a notice; returns the notification id (an earlier one's, for a duplicate)."""
    if dedup_key is not None:
        earlier = await session.scalar(
            select(Notification.id).where(
                Notification.customer_id == customer_id,
                Notification.dedup_key == dedup_key,
                Notification.created_at >= now - limits.dedup_window,
            )
        )
        if earlier is not None:
            return earlier
    customer = await session.get(Customer, customer_id)
    # The customer's own language when the bank knows it, else the caller's (a request's).
    locale: Locale = default_locale
    if customer is not None:
        locale = "en" if customer.locale == "en" else "ko"
    rendered = templates.render(kind, locale, context)  # fails here, not in the dispatcher
    notification = Notification(
        id=new_id("ntf"),
        customer_id=customer_id,
        kind=kind,
        category=category,
        locale=locale,
        context=freeze_context(context),
        dedup_key=dedup_key,
        subject=subject,
        created_at=now,
    )
    session.add(notification)
    rate_limited = category != "security" and await _over_rate(session, customer_id, now, limits)
    preferences = {
        (p.category, p.channel): p.enabled
        for p in await session.scalars(
            select(ChannelPreference).where(ChannelPreference.customer_id == customer_id)
        )
    }
    wanted = list(dict.fromkeys(channels))
    if "push" in wanted and _address(customer_id, customer, "push") is None and "sms" not in wanted:
        wanted.append("sms")  # no app to push to: the SMS is the fallback from the start
    for channel in wanted:
        address = _address(customer_id, customer, channel)
        decision = decide(
            category=category,
            channel=channel,
            enabled=preferences.get((category, channel), True),
            has_address=address is not None,
            marketing_consent=bool(customer and customer.marketing_consent_at),
            night_consent=bool(customer and customer.marketing_night_consent_at),
            now=now,
        )
        reason = decision.reason
        if decision.send_at is not None and rate_limited:
            reason = "rate_limited"
        delivery = Delivery(
            id=new_id("dlv"),
            notification_id=notification.id,
            channel=channel,
            address=address,
            status="queued" if reason is None else "suppressed",
            reason=reason,
            attempts=0,
            next_attempt_at=decision.send_at or now,
            created_at=now,
        )
        if channel == "inbox" and reason is None:
            await post_to_inbox(
                session,
                customer_id=customer_id,
                kind=kind,
                title=rendered.title,
                body=rendered.short,
                banner=rendered.banner,
                subject=subject,
            )
            delivery.status = "delivered"
        session.add(delivery)
        session.add(DeliveryEvent(delivery_id=delivery.id, status=delivery.status, reason=reason))
    add_event(
        session,
        "notification.created",
        {"notification_id": notification.id, "customer_id": customer_id, "kind": kind},
    )
    return notification.id


async def _over_rate(
    session: AsyncSession, customer_id: str, now: datetime, limits: NoticeLimits
) -> bool:
    recent = await session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(
            Notification.customer_id == customer_id,
            Notification.category != "security",
            Notification.created_at >= now - timedelta(hours=1),
        )
    )
    return (recent or 0) > limits.per_customer_per_hour
