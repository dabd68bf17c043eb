"""Fraud and phishing cases: the report, the protective actions taken for it, and a full
audit trail. A case is opened by a report (``POST /v1/fraud-reports``) or by an affiliate
institution's shared report, and moves through the damage-relief process
(:mod:`haetae.cases.process`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from haetae.db.base import Base, utcnow


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # voice_phishing | smishing | ... | other
    state: Mapped[str] = mapped_column(String(30))  # haetae.cases.process.State
    # When the current state's timer runs out (the process's time limit or the SLA).
    state_due_at: Mapped[datetime | None] = mapped_column(default=None)
    reporter_customer_id: Mapped[str | None] = mapped_column(String(100), default=None)
    reporter_phone: Mapped[str | None] = mapped_column(String(20), default=None)
    victim_customer_id: Mapped[str | None] = mapped_column(String(100), default=None)
    victim_account: Mapped[str | None] = mapped_column(String(20), default=None)
    victim_card_id: Mapped[str | None] = mapped_column(String(100), default=None)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)  # minor units
    currency: Mapped[str] = mapped_column(String(3), default="KRW")
    occurred_at: Mapped[datetime | None] = mapped_column(default=None)
    description: Mapped[str] = mapped_column(Text, default="")
    assignee: Mapped[str | None] = mapped_column(String(200), default=None)
    # A case opened from an affiliate's shared report: who shared it, and their case id.
    origin_institution: Mapped[str | None] = mapped_column(String(3), default=None)
    origin_case_id: Mapped[str | None] = mapped_column(String(40), default=None)
    refund_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The reporter's Idempotency-Key (unique) and a hash of the body it came with.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None, unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    reported_by: Mapped[str] = mapped_column(String(200), default="")  # the API key's name
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # SLA measurements: each set once, when it first happens.
    first_action_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_cases_state_due", "state", "state_due_at"),
        Index("ix_cases_received", "received_at"),
        Index("ix_cases_victim", "victim_customer_id"),
    )


class CaseAccount(Base):
    """An account the money went to (or that the affiliate reported)."""

    __tablename__ = "case_accounts"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    bank_code: Mapped[str] = mapped_column(String(3), primary_key=True)
    account_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)


class ProtectiveAction(Base):
    """One protective action: who took it, why, when; lifted only by an analyst, with reason.

    ``status``: ``active`` (in force here), ``requested`` (asked of another institution),
    ``lifted``, ``failed`` (could not be taken; ``detail`` says why)."""

    __tablename__ = "protective_actions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    type: Mapped[str] = mapped_column(String(30))
    target: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    taken_by: Mapped[str] = mapped_column(String(200))
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)
    lifted_by: Mapped[str | None] = mapped_column(String(200), default=None)
    lifted_at: Mapped[datetime | None] = mapped_column(default=None)
    lift_reason: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (Index("ix_protective_actions_target", "type", "target", "status"),)


class CaseEvent(Base):
    """The audit trail: every change to a case, in order, chained by hash so that a row
    changed or removed afterwards shows (each row's hash covers the previous row's)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the case
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))  # received | action | state | note | ...
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class CaseEvidence(Base):
    """An evidence file (a screenshot of the message, a call log): checked for size and
    type, stored under the data directory by its SHA-256."""

    __tablename__ = "case_evidence"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
