from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, StrictStr, StringConstraints

Identifier = Annotated[StrictStr, StringConstraints(min_length=1, max_length=100)]
DeviceName = Annotated[StrictStr, StringConstraints(min_length=1, max_length=100)]
Pem = Annotated[StrictStr, StringConstraints(min_length=1, max_length=65_536)]


class CertificateIn(BaseModel):
    """Either ``pem``, or ``kind`` and ``issued_at`` (the validity follows from the kind)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: Identifier
    device_id: Identifier
    device_name: DeviceName | None = None
    pem: Pem | None = None
    kind: Literal["joint", "financial"] | None = None
    issued_at: AwareDatetime | None = None


class RenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    not_after: AwareDatetime
    method: Literal["app", "web", "auto"] = "app"


class ReissueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: Identifier
    device_name: DeviceName | None = None
    pem: Pem | None = None  # the new certificate, when the bank has it


class ReminderOut(BaseModel):
    days_before: int
    due_at: datetime
    status: str
    reason: str | None


class HistoryOut(BaseModel):
    kind: str
    at: datetime
    device_id: str | None
    method: str | None
    not_after: datetime | None


class CertificateOut(BaseModel):
    id: str
    customer_id: str
    kind: str
    source: str
    serial: str | None
    subject: str | None
    issuer: str | None
    fingerprint_sha256: str | None
    device_id: str
    device_name: str | None
    status: Literal["active", "expired", "revoked"]
    issued_at: datetime
    not_after: datetime
    days_left: int
    renewal_window_open: bool
    renewed_at: datetime | None
    reissued_at: datetime | None
    revoked_at: datetime | None
    reminders: list[ReminderOut] | None = None
    history: list[HistoryOut] | None = None


class CertificatesOut(BaseModel):
    certificates: list[CertificateOut]


class BannerOut(BaseModel):
    kind: str
    title: str
    text: str
    certificate_id: str | None = None
    inbox_item_id: str | None = None


class BannersOut(BaseModel):
    """What the app shows now: banners, and the one to open as a pop-up at login."""

    banners: list[BannerOut]
    login_popup: BannerOut | None
