"""Run a rule over past events: how many it would hit, the fraud it would catch, the
genuine events it would stop, and the money involved.

Fraud is ``label == 1``, genuine ``label == 0``; hits on unlabelled events count as hits
but as neither caught fraud nor false positives. Amounts are summed in minor units; with
more than one currency in the history, read ``by_currency``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import polars.selectors as cs

from haetae.risk.rules.compiler import ListLookup, to_expr
from haetae.risk.rules.names import EVENT_COLUMNS, EVENT_NAMES, ValueType
from haetae.risk.rules.nodes import Rule, names

_DTYPES: Mapping[ValueType, pl.DataType] = {
    "number": pl.Float64(),
    "bool": pl.Boolean(),
    "string": pl.String(),
}
# Working columns; "@" cannot start a name in a rule, so these never collide with one.
_HIT, _LABEL, _AMOUNT, _CURRENCY = "@hit", "@label", "@amount", "@currency"


@dataclass(frozen=True, slots=True)
class CurrencyAmounts:
    amount_at_stake: int
    amount_caught: int


@dataclass(frozen=True, slots=True)
class BacktestResult:
    events: int
    hits: int
    fraud_caught: int
    false_positives: int
    unlabelled_hits: int
    fraud_total: int
    amount_at_stake: int  # sum of the hits' amounts
    amount_caught: int  # sum of the caught frauds' amounts
    precision: float | None  # caught / (caught + false positives); None without labelled hits
    recall: float | None  # caught / all fraud; None when the events hold no fraud
    by_currency: dict[str, CurrencyAmounts]
    missing_columns: list[str]  # names the history lacks: missing in every event


def run_backtest(
    rule: Rule,
    history: pl.LazyFrame,
    lists: ListLookup,
    known: Mapping[str, ValueType],
    *,
    kinds: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> BacktestResult:
    """``known``: the features' types, for the names the history lacks (read as missing)."""
    available = set(history.collect_schema().names())
    events = history.filter(*_filters(available, kinds, since, until))
    columns, missing = name_columns(names(rule.condition), available, known)
    frame = (
        events.select(
            *columns,
            _base(available, "label", pl.Int8()).alias(_LABEL),
            _base(available, "amount", pl.Int64()).fill_null(0).alias(_AMOUNT),
            _base(available, "currency", pl.String()).alias(_CURRENCY),
        )
        # Online, NaN is a value; in Polars it compares above everything. Null is closer.
        .with_columns(cs.float().fill_nan(None))
        .with_columns(to_expr(rule.condition, lists).alias(_HIT))
    )
    hit = pl.col(_HIT)
    fraud = (pl.col(_LABEL) == 1).fill_null(False)
    genuine = (pl.col(_LABEL) == 0).fill_null(False)
    totals = (
        frame.select(
            events=pl.len(),
            hits=hit.sum(),
            fraud_caught=(hit & fraud).sum(),
            false_positives=(hit & genuine).sum(),
            fraud_total=fraud.sum(),
            amount_at_stake=pl.col(_AMOUNT).filter(hit).sum(),
            amount_caught=pl.col(_AMOUNT).filter(hit & fraud).sum(),
        )
        .collect()
        .row(0, named=True)
    )
    per_currency = (
        frame.filter(hit)
        .group_by(_CURRENCY)
        .agg(
            amount_at_stake=pl.col(_AMOUNT).sum(),
            amount_caught=pl.col(_AMOUNT).filter(fraud).sum(),
        )
        .collect()
    )
    caught, false_positives = int(totals["fraud_caught"]), int(totals["false_positives"])
    fraud_total, hits = int(totals["fraud_total"]), int(totals["hits"])
    return BacktestResult(
        events=int(totals["events"]),
        hits=hits,
        fraud_caught=caught,
        false_positives=false_positives,
        unlabelled_hits=hits - caught - false_positives,
        fraud_total=fraud_total,
        amount_at_stake=int(totals["amount_at_stake"]),
        amount_caught=int(totals["amount_caught"]),
        precision=caught / (caught + false_positives) if caught + false_positives else None,
        recall=caught / fraud_total if fraud_total else None,
        by_currency={
            str(row[_CURRENCY] or "unknown"): CurrencyAmounts(
                int(row["amount_at_stake"]), int(row["amount_caught"])
            )
            for row in per_currency.sort(_CURRENCY).iter_rows(named=True)
        },
        missing_columns=missing,
    )


def name_columns(
    wanted: Iterable[str], available: Collection[str], known: Mapping[str, ValueType]
) -> tuple[list[pl.Expr], list[str]]:
    """A column per name a rule uses, named as in the rule (``device.id`` is the event's
    ``device_id``), and the names ``available`` lacks: those are missing (null, of the
    type ``known`` or the event's names give) for every event."""
    types = {**known, **EVENT_NAMES}
    columns, missing = [], []
    for name in wanted:
        source = name if name in available else EVENT_COLUMNS.get(name)
        if source is not None and source in available:
            columns.append(pl.col(source).alias(name))
        else:
            missing.append(name)
            columns.append(pl.lit(None, dtype=_DTYPES[types.get(name, "number")]).alias(name))
    return columns, missing


def _base(available: set[str], column: str, dtype: pl.DataType) -> pl.Expr:
    return pl.col(column).cast(dtype) if column in available else pl.lit(None, dtype=dtype)


def _filters(
    available: set[str],
    kinds: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> list[pl.Expr]:
    filters = [pl.lit(True)]
    if kinds is not None:
        filters.append(_base(available, "kind", pl.String()).is_in(list(kinds)))
    if since is not None:
        filters.append(_base(available, "occurred_at", pl.Datetime("us", "UTC")) >= since)
    if until is not None:
        filters.append(_base(available, "occurred_at", pl.Datetime("us", "UTC")) < until)
    return filters
