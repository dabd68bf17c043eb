"""The report's figures as data: what ``format=json`` returns and what the pages are drawn
from. Money in minor units of ``currency``; times timezone-aware (the period's in Seoul)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class DecisionCell(_Frozen):
    """Decisions of one kind and outcome in one bucket."""

    bucket: str
    kind: str
    decision: str
    count: int
    amount: int  # minor units of the report currency
    other_currency: int  # decisions in another currency: counted, their amounts left out
    confirmed_fraud: int  # labelled "fraud" by an analyst


class PreventedCell(_Frozen):
    bucket: str
    blocked_count: int
    blocked_amount: int
    abandoned_count: int  # challenged payments whose step-up was failed or abandoned
    abandoned_amount: int

    @property
    def amount(self) -> int:
        return self.blocked_amount + self.abandoned_amount


class RuleCatch(_Frozen):
    name: str
    caught: int  # detected decisions the rule hit
    blocked: int
    reviewed: int
    challenged: int
    amount: int  # the amounts of those decisions, report currency


class CaseKindStats(_Frozen):
    kind: str
    received: int
    acted: int
    awaiting: int  # no action yet when the report was made
    median_seconds: float | None
    p90_seconds: float | None
    amount_reported: int
    refunded: int


class CaseTrendCell(_Frozen):
    bucket: str
    kind: str
    count: int


class ActionCount(_Frozen):
    type: str
    status: str
    count: int


class DeliveryCount(_Frozen):
    channel: str
    status: str
    count: int


class NoticeCount(_Frozen):
    category: str
    count: int


class Summary(_Frozen):
    events_scored: int
    detected: int
    blocked: int
    confirmed_fraud: int
    money_prevented: int
    reports_received: int
    reports_acted: int
    median_first_action_seconds: float | None
    p90_first_action_seconds: float | None
    notices: int
    deliveries_reached: int


class SafetyMetrics(_Frozen):
    period: str
    period_kind: str
    start: datetime  # Seoul
    end: datetime  # Seoul, exclusive
    buckets: list[str]
    generated_at: datetime
    complete: bool  # the period had ended when the report was made
    currency: str
    summary: Summary
    decisions: list[DecisionCell]
    prevented: list[PreventedCell]
    rules: list[RuleCatch]
    cases: list[CaseKindStats]
    case_trend: list[CaseTrendCell]
    actions: list[ActionCount]
    deliveries: list[DeliveryCount]
    notices: list[NoticeCount]
