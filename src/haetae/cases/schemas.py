"""What clients send and receive for fraud reports and cases."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr, model_validator

ReportKind = Literal[
    "voice_phishing",
    "smishing",
    "messenger_impersonation",
    "account_takeover",
    "card_fraud",
    "lost_card",
    "other",
]

ACCOUNT = r"^[0-9][0-9-]{4,18}[0-9]$"


class Reporter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: StrictStr | None = Field(default=None, min_length=1, max_length=100)
    phone: StrictStr | None = Field(default=None, pattern=r"^\+?[0-9][0-9-]{6,18}$")

    @model_validator(mode="after")
    def _someone_to_answer(self) -> Reporter:
        if not (self.customer_id or self.phone):
            raise ValueError("the reporter needs a customer_id or a phone to be answered on")
        return self


class Victim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: StrictStr | None = Field(default=None, min_length=1, max_length=100)
    account_number: StrictStr | None = Field(default=None, pattern=ACCOUNT)
    card_id: StrictStr | None = Field(default=None, min_length=1, max_length=100)


class SuspectAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_code: StrictStr = Field(pattern=r"^[0-9]{3}$")
    account_number: StrictStr = Field(pattern=ACCOUNT)
    amount: int | None = Field(default=None, ge=0, le=10**13)


class FraudReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReportKind
    reporter: Reporter
    victim: Victim = Field(default_factory=Victim)
    suspect_accounts: list[SuspectAccount] = Field(default_factory=list, max_length=50)
    suspect_devices: list[StrictStr] = Field(default_factory=list, max_length=50)
    suspect_phones: list[StrictStr] = Field(default_factory=list, max_length=50)
    amount: int = Field(default=0, ge=0, le=10**13)
    currency: StrictStr = Field(default="KRW", pattern=r"^[A-Z]{3}$")
    occurred_at: AwareDatetime | None = None
    description: StrictStr = Field(default="", max_length=5000)


class ActionOut(BaseModel):
    id: str
    type: str
    target: str
    status: str
    reason: str
    taken_by: str
    taken_at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)
    lifted_by: str | None = None
    lifted_at: datetime | None = None
    lift_reason: str | None = None


class ReportOut(BaseModel):
    case_id: str
    state: str
    received_at: datetime
    actions: list[ActionOut]


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: StrictStr
    reason: StrictStr = Field(default="", max_length=2000)
    refund_amount: int | None = Field(default=None, ge=0, le=10**13)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: StrictStr = Field(min_length=1, max_length=200)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: StrictStr = Field(min_length=1, max_length=5000)


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StrictStr = Field(min_length=3, max_length=2000)
