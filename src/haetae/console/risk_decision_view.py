"""A stored decision as the review pages show it: times in Seoul, money in the page's
language, the model's reasons in the page's language, feature values as rules write them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from haetae.catalog import Locale, format_money
from haetae.notify.templates import format_seoul_datetime
from haetae.risk.decisions.models import DecisionRecord

# How many of the model's reasons the queue shows (the details page shows them all).
TOP_REASONS = 3
# Event kinds whose amount is money moved; for the others an amount of 0 says nothing.
_MONEY_KINDS = frozenset({"payment", "transfer"})


@dataclass(frozen=True, slots=True)
class DecisionRow:
    id: str
    time: str
    decided: str
    kind: str
    customer_id: str
    amount: str | None
    decision: str
    score: int
    hits: list[dict[str, Any]]
    reasons: list[str]
    is_open: bool


def reasons_in(record: DecisionRecord, locale: Locale) -> list[str]:
    """The model's reasons, most important first, in the page's language."""
    return [str(reason.get(locale) or reason.get("code", "")) for reason in record.reasons]


def decision_row(
    record: DecisionRecord, locale: Locale, *, reasons: int | None = None
) -> DecisionRow:
    moved = record.amount or record.kind in _MONEY_KINDS
    return DecisionRow(
        id=record.id,
        time=format_seoul_datetime(record.occurred_at, locale),
        decided=format_seoul_datetime(record.decided_at, locale),
        kind=record.kind,
        customer_id=record.customer_id,
        amount=format_money(record.amount, record.currency, locale) if moved else None,
        decision=record.decision,
        score=record.score,
        hits=list(record.rule_hits),
        reasons=reasons_in(record, locale)[:reasons],
        is_open=record.review_status == "open",
    )


def display_value(value: Any) -> str | None:
    """A feature or event value as a rule would write it (None: no value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def value_rows(values: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Name and value, by name."""
    return [(name, display_value(values[name])) for name in sorted(values)]
