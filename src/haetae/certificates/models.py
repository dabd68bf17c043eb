from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from haetae.db.base import Base, utcnow


class Certificate(Base):
    """One customer's certificate as the bank knows it now; history is in CertificateEvent.

    Renewal and reissue update this row (new validity, new device) rather than adding one:
    the customer holds one certificate of a kind, and reminders follow its current expiry.
    """

    __tablename__ = "certificates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # joint | financial
    source: Mapped[str] = mapped_column(String(10))  # pem | metadata
    serial: Mapped[str | None] = mapped_column(String(80), default=None)
    subject: Mapped[str | None] = mapped_column(String(500), default=None)
    issuer: Mapped[str | None] = mapped_column(String(500), default=None)
    fingerprint_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    device_id: Mapped[str] = mapped_column(String(100))
    device_name: Mapped[str | None] = mapped_column(String(100), default=None)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | revoked
    issued_at: Mapped[datetime]
    not_after: Mapped[datetime]
    renewed_at: Mapped[datetime | None] = mapped_column(default=None)
    reissued_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_certificates_customer", "customer_id"),
        Index("ix_certificates_fingerprint", "customer_id", "fingerprint_sha256"),
        Index("ix_certificates_not_after", "not_after"),
    )


class CertificateEvent(Base):
    """What happened to a certificate: registered, renewed, reissued, revoked."""

    __tablename__ = "certificate_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    device_id: Mapped[str | None] = mapped_column(String(100), default=None)
    method: Mapped[str | None] = mapped_column(String(20), default=None)
    not_after: Mapped[datetime | None] = mapped_column(default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class CertificateReminder(Base):
    """One planned expiry reminder: the durable schedule.

    The key (certificate, the expiry it is for, days before) makes planning idempotent and
    a reminder sendable once; a renewal moves the expiry, so the old rows stop applying.
    """

    __tablename__ = "certificate_reminders"

    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    not_after: Mapped[datetime] = mapped_column(primary_key=True)
    days_before: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_at: Mapped[datetime]
    # pending → sent | skipped (with reason: renewed, revoked, expired, superseded)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    reason: Mapped[str | None] = mapped_column(String(20), default=None)
    notification_id: Mapped[str | None] = mapped_column(String(40), default=None)
    done_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_certificate_reminders_due", "status", "due_at"),)
