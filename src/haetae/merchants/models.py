from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from haetae.db.base import Base, utcnow

CardPolicy = Literal["none", "vault"]

# Minor units per currency. KRW 100 is the usual card minimum in Korea (Toss Payments).
DEFAULT_AMOUNT_LIMITS = {"KRW": 10_000_000, "USD": 1_000_000}
DEFAULT_CHALLENGE_THRESHOLDS = {"KRW": 1_000_000, "USD": 100_000}


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # "none": nothing of the card beyond fingerprint and mask (the Korean key-in norm);
    # "vault": the number is kept encrypted and a token returned.
    card_policy: Mapped[str] = mapped_column(String(10), default="none")
    amount_limits: Mapped[dict[str, int]] = mapped_column(
        JSON, default=lambda: dict(DEFAULT_AMOUNT_LIMITS)
    )
    challenge_thresholds: Mapped[dict[str, int]] = mapped_column(
        JSON, default=lambda: dict(DEFAULT_CHALLENGE_THRESHOLDS)
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
