from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

# A light check: the mail server is the judge of an address; this catches typing slips.
EmailLike = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class InboxItemOut(BaseModel):
    id: str
    kind: str
    title: str
    body: str
    created_at: datetime
    read: bool
    banner: bool


class InboxOut(BaseModel):
    items: list[InboxItemOut]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: StrictStr | None = Field(default=None, pattern=r"^\+?[0-9]{8,15}$")
    email: EmailLike | None = None
    locale: Literal["ko", "en"] = "ko"
    push_token: StrictStr | None = Field(default=None, min_length=1, max_length=512)
    marketing_consent: bool = False
    marketing_night_consent: bool = False


class CustomerOut(BaseModel):
    id: str
    phone: str | None
    email: str | None
    locale: str
    push_token: str | None
    marketing_consent: bool
    marketing_night_consent: bool


class PreferencesDoc(BaseModel):
    """``{category: {channel: enabled}}``; what is absent stays as it is (on by default)."""

    model_config = ConfigDict(extra="forbid")

    preferences: dict[
        Literal["security", "transactional", "marketing"],
        dict[Literal["inbox", "push", "sms", "email"], bool],
    ]


class DeliveryEventOut(BaseModel):
    status: str
    reason: str | None
    at: datetime


class DeliveryOut(BaseModel):
    id: str
    channel: str
    status: str
    reason: str | None
    attempts: int
    fallback_of: str | None
    history: list[DeliveryEventOut]


class NotificationOut(BaseModel):
    id: str
    customer_id: str
    kind: str
    category: str
    created_at: datetime
    deliveries: list[DeliveryOut]


class ReceiptIn(BaseModel):
    """A provider's or the app's report that a delivery reached the customer."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["delivered", "failed"] = "delivered"
    reason: StrictStr | None = Field(default=None, max_length=200)
