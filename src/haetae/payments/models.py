"""Payment tables. No column ever holds a card number in clear, a CVC, a birth date or
password digits: cards are known by fingerprint and mask, or by vault token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from haetae.db.base import Base, utcnow

# A payment owing the issuer a reversal (``reversals``): the condition of the partial index
# the sweep reads, and a term of the sweep's query, written the same so that both databases
# see that the index applies.
REVERSAL_OWED = "reversal_status IN ('pending', 'sending')"


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Looked up through ix_payments_merchant_order, which it leads (migration 0011).
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    order_id: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[str] = mapped_column(String(100), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # pending → authorizing → approved | declined | failed | challenge_required;
    # challenge_required → authorizing | failed; approved → cancelling → cancelled
    status: Mapped[str] = mapped_column(String(20))
    locale: Mapped[str] = mapped_column(String(2), default="ko")

    card_brand: Mapped[str | None] = mapped_column(String(20), default=None)
    card_masked: Mapped[str | None] = mapped_column(String(25), default=None)
    card_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    card_token: Mapped[str | None] = mapped_column(String(40), default=None)

    error_code: Mapped[str | None] = mapped_column(String(50), default=None)
    error_field: Mapped[str | None] = mapped_column(String(50), default=None)
    error_params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # What the customer must not be told (a lost or stolen card), for analysts only.
    internal_flags: Mapped[list[str]] = mapped_column(JSON, default=list)

    issuer_name: Mapped[str | None] = mapped_column(String(40), default=None)
    issuer_response_code: Mapped[str | None] = mapped_column(String(4), default=None)
    approval_code: Mapped[str | None] = mapped_column(String(12), default=None)
    rrn: Mapped[str | None] = mapped_column(String(12), default=None, unique=True)
    stan: Mapped[str | None] = mapped_column(String(6), default=None)
    transmitted_at: Mapped[datetime | None] = mapped_column(default=None)
    eci: Mapped[str | None] = mapped_column(String(2), default=None)

    risk_decision: Mapped[str | None] = mapped_column(String(10), default=None)
    risk_score: Mapped[int | None] = mapped_column(Integer, default=None)
    risk_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)

    device_id: Mapped[str | None] = mapped_column(String(200), default=None)
    ip: Mapped[str | None] = mapped_column(String(45), default=None)

    # none | pending | done: a reversal owed to the issuer after a timeout or a cancel.
    reversal_status: Mapped[str] = mapped_column(String(10), default="none")
    reversal_reason: Mapped[str | None] = mapped_column(String(10), default=None)
    reversal_attempts: Mapped[int] = mapped_column(Integer, default=0)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    authorized_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_payments_merchant_order", "merchant_id", "order_id"),
        # Only payments owing a reversal, the sweep's rows: every payment in an index of
        # its reversal status cost each payment's insert an entry nobody looks up.
        Index(
            "ix_payments_reversal_owed",
            "reversal_status",
            sqlite_where=text(REVERSAL_OWED),
            postgresql_where=text(REVERSAL_OWED),
        ),
    )


class PaymentChallenge(Base):
    """A step-up: the one-time code (as a keyed hash) and how many tries are left."""

    __tablename__ = "payment_challenges"

    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|passed|failed
    source: Mapped[str] = mapped_column(String(10))  # "risk" or "issuer"
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """The first response to an Idempotency-Key, replayed to every retry with the same body."""

    __tablename__ = "idempotency_keys"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Keyed hash: the body holds a card number, a plain hash of it could be brute-forced.
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="in_progress")  # or "completed"
    payment_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class VaultCard(Base):
    """A stored card number under the ``vault`` policy: AES-256-GCM under a data key."""

    __tablename__ = "vault_cards"

    token: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(ForeignKey("vault_keys.id"), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    brand: Mapped[str] = mapped_column(String(20))
    masked: Mapped[str] = mapped_column(String(25))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_vault_cards_merchant_fp", "merchant_id", "fingerprint"),)
