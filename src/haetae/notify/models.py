from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haetae.db.base import Base, utcnow


class InboxItem(Base):
    __tablename__ = "inbox_items"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    banner: Mapped[bool] = mapped_column(default=False)
    banner_text: Mapped[str | None] = mapped_column(String(300), default=None)
    # What the notice is about (a certificate id, a case id): lets a later state change,
    # such as a renewal, take down a banner that no longer applies.
    subject: Mapped[str | None] = mapped_column(String(40), default=None)
    read: Mapped[bool] = mapped_column(default=False)
    dismissed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_inbox_items_customer_created", "customer_id", "created_at"),)


class Customer(Base):
    """How to reach a customer; the bank's own customer id."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    locale: Mapped[str] = mapped_column(String(2), default="ko")
    push_token: Mapped[str | None] = mapped_column(String(512), default=None)
    # Advertising needs consent, and separate consent between 21:00 and 08:00 (Network Act
    # §50); both are re-confirmed every two years, so the time of consent is kept.
    marketing_consent_at: Mapped[datetime | None] = mapped_column(default=None)
    marketing_night_consent_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChannelPreference(Base):
    """A customer's choice for one category on one channel (absent: the default, on)."""

    __tablename__ = "notification_preferences"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(50))
    category: Mapped[str] = mapped_column(String(20))  # security | transactional | marketing
    locale: Mapped[str] = mapped_column(String(2))
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedup_key: Mapped[str | None] = mapped_column(String(200), default=None)
    subject: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_notifications_customer_created", "customer_id", "created_at"),
        Index("ix_notifications_dedup", "customer_id", "dedup_key", "created_at"),
    )


class Delivery(Base):
    """One notice on one channel: the durable queue the dispatcher works from."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    notification_id: Mapped[str] = mapped_column(ForeignKey("notifications.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str | None] = mapped_column(String(512), default=None)
    # queued → sending → sent → delivered; failed; suppressed (with reason)
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    fallback_of: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)


class DeliveryEvent(Base):
    """A delivery's status history."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)
