from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from haetae.risk.events import EventKind
from haetae.risk.rules.nodes import Decision

# Rule names go in URLs; list names are written in rules after "@".
RULE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
LIST_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
RuleName = Annotated[StrictStr, StringConstraints(pattern=RULE_NAME)]
RuleText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=10_000)]
ListValue = Annotated[StrictStr, StringConstraints(min_length=1, max_length=200)]
Kinds = Annotated[list[EventKind], Field(min_length=1)]


class RuleIn(BaseModel):
    """``kinds`` omitted: every kind for a new rule, unchanged for an existing one; null:
    every kind. ``enabled`` omitted: true for a new rule, unchanged for an existing one."""

    model_config = ConfigDict(extra="forbid")

    name: RuleName
    rule: RuleText
    kinds: Kinds | None = None
    enabled: bool | None = None


class RuleOut(BaseModel):
    name: str
    version: int
    rule: str
    decision: Decision
    kinds: list[str] | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class VersionOut(BaseModel):
    version: int
    rule: str
    decision: Decision
    created_at: datetime
    created_by: str


class RuleDetailOut(RuleOut):
    versions: list[VersionOut]  # newest first


class RulesOut(BaseModel):
    rules: list[RuleOut]


class ListIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: Annotated[list[ListValue], Field(max_length=100_000)]


class ListOut(BaseModel):
    name: str
    values: list[str]
    count: int
    updated_at: datetime


class ListSummaryOut(BaseModel):
    name: str
    count: int
    updated_at: datetime


class ListsOut(BaseModel):
    lists: list[ListSummaryOut]


class BacktestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: RuleText
    kinds: Kinds | None = None
    since: AwareDatetime | None = None  # inclusive
    until: AwareDatetime | None = None  # exclusive


class CurrencyAmountsOut(BaseModel):
    amount_at_stake: int
    amount_caught: int


class BacktestOut(BaseModel):
    events: int
    hits: int
    fraud_caught: int
    false_positives: int
    unlabelled_hits: int
    fraud_total: int
    amount_at_stake: int
    amount_caught: int
    precision: float | None
    recall: float | None
    by_currency: dict[str, CurrencyAmountsOut]
    missing_columns: list[str]
