"""The events the fraud engine scores and learns from: one shape, online and offline.

Online, an event is a :class:`RiskEvent` (from the API, from payments in-process, or from the
outbox: ``certificate.reissued``). Offline, a history of events is a Polars frame (or Parquet
file) with the columns of :data:`EVENT_SCHEMA`, one row per event, sorted by ``occurred_at``.
The simulator writes that shape; features, rule backtests and training read it.

Money is an integer in minor units with its currency (KRW has none; the handbook's card
simulation is in USD cents). Times are timezone-aware UTC. ``label`` (1 = fraud) and
``scenario`` exist only in labelled history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import polars as pl
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr

EventKind = Literal[
    "payment",  # a card payment (key-in or at a terminal)
    "transfer",  # money sent to a payee's account
    "login",
    "certificate_reissue",
    "payee_added",
    "password_reset",
]
EVENT_KINDS: tuple[EventKind, ...] = (
    "payment",
    "transfer",
    "login",
    "certificate_reissue",
    "payee_added",
    "password_reset",
)

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "kind": pl.String(),
    "occurred_at": pl.Datetime("us", "UTC"),
    "customer_id": pl.String(),
    "amount": pl.Int64(),  # minor units; 0 for events that move no money
    "currency": pl.String(),
    "card_id": pl.String(),  # a card fingerprint online; never a card number
    "terminal_id": pl.String(),  # the merchant's terminal (or the merchant, for key-in)
    "device_id": pl.String(),
    "ip": pl.String(),
    "payee_bank": pl.String(),
    "payee_account": pl.String(),
    "approved": pl.Boolean(),  # the issuer's answer to a payment; null when not known
    "label": pl.Int8(),  # 1 fraud, 0 genuine; null when not labelled
    "scenario": pl.String(),  # which simulated fraud scenario, if any
}


class Payee(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_code: StrictStr = Field(min_length=3, max_length=3, pattern=r"^[0-9]{3}$")
    account_number: StrictStr = Field(min_length=6, max_length=20, pattern=r"^[0-9-]+$")


class Device(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr = Field(min_length=1, max_length=100)
    ip: StrictStr | None = Field(default=None, max_length=45)


class RiskEvent(BaseModel):
    """One event to score (``POST /v1/risk/evaluate``)."""

    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    customer_id: StrictStr = Field(min_length=1, max_length=100)
    occurred_at: AwareDatetime
    event_id: StrictStr | None = Field(default=None, max_length=64)
    amount: int = Field(default=0, ge=0, le=10**13)
    currency: StrictStr = Field(default="KRW", pattern=r"^[A-Z]{3}$")
    card_id: StrictStr | None = Field(default=None, max_length=100)
    terminal_id: StrictStr | None = Field(default=None, max_length=100)
    payee: Payee | None = None
    device: Device | None = None
    approved: bool | None = None

    def row(self) -> dict[str, object]:
        """The event as one row of :data:`EVENT_SCHEMA` (unlabelled)."""
        occurred: datetime = self.occurred_at
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "occurred_at": occurred,
            "customer_id": self.customer_id,
            "amount": self.amount,
            "currency": self.currency,
            "card_id": self.card_id,
            "terminal_id": self.terminal_id,
            "device_id": self.device.id if self.device else None,
            "ip": self.device.ip if self.device else None,
            "payee_bank": self.payee.bank_code if self.payee else None,
            "payee_account": self.payee.account_number if self.payee else None,
            "approved": self.approved,
            "label": None,
            "scenario": None,
        }


def empty_events() -> pl.DataFrame:
    return pl.DataFrame(schema=EVENT_SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with exactly the event columns, in order and types (missing ones null)."""
    columns = [
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in EVENT_SCHEMA.items()
    ]
    return frame.select(columns)
