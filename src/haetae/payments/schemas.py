"""API shapes for payments."""

from __future__ import annotations

from datetime import datetime
from ipaddress import ip_address
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from haetae.catalog import CustomerError

# "processing": the issuer is being asked right now (seen only by a look-up in that moment;
# a payment whose process died there is resolved to "failed" by the housekeeper).
PaymentStatus = Literal[
    "approved", "declined", "challenge_required", "failed", "cancelled", "processing"
]


class _Strict(BaseModel):
    # Unknown fields are rejected: a "cvv" where "cvc" was meant must not pass silently.
    model_config = ConfigDict(extra="forbid")


class CardIn(_Strict):
    number: StrictStr = Field(max_length=40)
    exp_month: StrictInt
    exp_year: StrictInt
    cvc: StrictStr | None = Field(default=None, max_length=8)
    birth_or_business_no: StrictStr | None = Field(default=None, max_length=12)
    password_2digits: StrictStr | None = Field(default=None, max_length=4)
    holder_name: StrictStr | None = Field(default=None, max_length=100)

    def __repr__(self) -> str:  # never let a traceback or debug print show the card
        return "CardIn(<redacted>)"

    __str__ = __repr__


class DeviceIn(_Strict):
    id: StrictStr = Field(min_length=1, max_length=200)
    ip: StrictStr | None = Field(default=None, max_length=45)

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, value: str | None) -> str | None:
        if value is not None:
            ip_address(value)  # ValueError becomes a 422 naming device.ip
        return value


class PaymentCreate(_Strict):
    amount: StrictInt = Field(gt=0, le=10**15)
    currency: StrictStr = Field(pattern=r"^[A-Z]{3}$")
    order_id: StrictStr = Field(min_length=1, max_length=100)
    customer_id: StrictStr = Field(min_length=1, max_length=100)
    card: CardIn
    device: DeviceIn | None = None


class ChallengeIn(_Strict):
    otp: StrictStr = Field(min_length=1, max_length=12)


class CardOut(BaseModel):
    brand: str
    masked: str
    token: str | None = None


class ChallengeOut(BaseModel):
    method: Literal["inbox"] = "inbox"
    expires_at: datetime
    attempts_left: int


class PaymentOut(BaseModel):
    id: str
    status: PaymentStatus
    amount: int
    currency: str
    order_id: str
    customer_id: str
    card: CardOut | None = None
    approval_code: str | None = None
    challenge: ChallengeOut | None = None
    error: CustomerError | None = None
    created_at: datetime
