"""Messages shared with affiliate institutions: what we send (kept until acknowledged) and
what we received (kept so a replayed message is recognised and dropped)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haetae.db.base import Base, utcnow


class OutgoingShare(Base):
    """One signed message to one affiliate, retried with backoff until it is acknowledged."""

    __tablename__ = "consortium_outgoing"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the message id
    recipient: Mapped[str] = mapped_column(String(3))  # the affiliate's institution code
    body: Mapped[str] = mapped_column(Text)  # the signed envelope, exactly as sent
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | acknowledged
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_consortium_outgoing_due", "status", "next_attempt_at"),)


class ReceivedShare(Base):
    """A message accepted from an affiliate; its (sender, id) is never accepted twice."""

    __tablename__ = "consortium_received"

    sender: Mapped[str] = mapped_column(String(3), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    signed_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    case_id: Mapped[str | None] = mapped_column(String(40), default=None)  # linked case here
