from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class ReasonOut(BaseModel):
    code: str
    message: str  # in the caller's language (Accept-Language)


class RuleHitOut(BaseModel):
    name: str
    version: int
    decision: str


class WarningOut(BaseModel):
    """What the customer is told before a transfer that looks like voice phishing."""

    code: str
    message: str
    next_step: str
    delay_minutes: int
    release_at: datetime


class AssessmentOut(BaseModel):
    decision_id: str
    decision: Literal["allow", "challenge", "review", "block"]
    score: int
    reasons: list[ReasonOut]
    rule_hits: list[RuleHitOut]
    model_version: str | None
    warning: WarningOut | None = None


class DecisionOut(BaseModel):
    id: str
    event_id: str | None
    kind: str
    customer_id: str
    occurred_at: datetime
    decided_at: datetime
    amount: int
    currency: str
    decision: str
    score: int
    reasons: list[dict[str, Any]]
    rule_hits: list[dict[str, Any]]
    model_version: str | None
    features: dict[str, Any]
    event: dict[str, Any]
    review_status: str | None
    label: str | None
    labelled_by: str | None
    labelled_at: datetime | None
    note: str | None


class ReviewQueueOut(BaseModel):
    items: list[DecisionOut]


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Literal["fraud", "genuine"]
    note: StrictStr | None = Field(default=None, max_length=500)
