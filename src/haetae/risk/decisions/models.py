from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from haetae.db.base import Base, utcnow

REISSUE_ONLY = "kind = 'certificate_reissue'"


class DecisionRecord(Base):
    """One decision with the event and the feature values it was made on, so an analyst can
    see why, and a label given later becomes a training example exactly as scored."""

    __tablename__ = "risk_decisions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str | None] = mapped_column(String(64), default=None)
    kind: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="KRW")
    event: Mapped[dict[str, Any]] = mapped_column(JSON)  # the event's row (no card number)
    decision: Mapped[str] = mapped_column(String(10))  # allow | challenge | review | block
    score: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    rule_hits: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    model_version: Mapped[str | None] = mapped_column(String(80), default=None)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The review queue: "open" for review decisions until an analyst labels them.
    review_status: Mapped[str | None] = mapped_column(String(10), default=None)
    label: Mapped[str | None] = mapped_column(String(10), default=None)  # fraud | genuine
    labelled_by: Mapped[str | None] = mapped_column(String(100), default=None)
    labelled_at: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str | None] = mapped_column(String(500), default=None)

    __table_args__ = (
        Index("ix_risk_decisions_review", "review_status", "decided_at"),
        Index("ix_risk_decisions_customer", "customer_id", "decided_at"),
        # Only reissues are looked up by their event (a redelivered certificate.reissued is
        # dropped); an index of every decision's random event id cost a fifth of each
        # group commit's write (migration 0010).
        Index(
            "ix_risk_decisions_reissue_event",
            "event_id",
            sqlite_where=text(REISSUE_ONLY),
            postgresql_where=text(REISSUE_ONLY),
        ),
    )
