"""The handbook's time-based protocol: a training period, a delay, a test period.

Fraud labels arrive late (a customer notices and reports days later), so a model trained on
days ``[start, start + train)`` is tested on ``[start + train + delay, ... + test)``. Days are
UTC calendar days of ``occurred_at``.

The test set leaves out cards already known to be compromised, as the handbook does
(``get_train_test_set``): on test day ``t``, a card is known if it had a labelled fraud on a
day in ``[start, t - delay)``: the training period's frauds, plus those of the delay period
whose labels have arrived by then. Scoring those cards would only find fraud already found.

A card is ``card_id`` where the history has one, else the customer (the handbook's simulated
customers have one card each).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta

import polars as pl

DAY = "_day"
CARD = "_card"


@dataclass(frozen=True, slots=True)
class Split:
    train_start: date
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7

    def __post_init__(self) -> None:
        if self.train_days < 1 or self.test_days < 1 or self.delay_days < 0:
            raise ValueError("train and test periods need a day or more; the delay can be 0")

    @property
    def train_end(self) -> date:
        """The first day after the training period."""
        return self.train_start + timedelta(days=self.train_days)

    @property
    def test_start(self) -> date:
        return self.train_end + timedelta(days=self.delay_days)

    @property
    def test_end(self) -> date:
        """The first day after the test period."""
        return self.test_start + timedelta(days=self.test_days)

    def as_dict(self) -> dict[str, object]:
        params = asdict(self)
        params["train_start"] = self.train_start.isoformat()
        return params

    @classmethod
    def latest(
        cls, last_day: date, train_days: int = 7, delay_days: int = 7, test_days: int = 7
    ) -> Split:
        """The split whose test period ends with ``last_day``: the most recent data."""
        span = train_days + delay_days + test_days
        return cls(last_day - timedelta(days=span - 1), train_days, delay_days, test_days)


def with_keys(events: pl.DataFrame) -> pl.DataFrame:
    """``events`` with the UTC day and the card key the protocol and the metrics group by."""
    return events.with_columns(
        pl.col("occurred_at").dt.date().alias(DAY),
        pl.coalesce("card_id", "customer_id").alias(CARD),
    )


def last_day(events: pl.DataFrame) -> date:
    value = events.select(pl.col("occurred_at").max().dt.date()).item()
    if value is None:
        raise ValueError("the history is empty")
    assert isinstance(value, date)
    return value


def training_rows(events: pl.DataFrame, split: Split) -> pl.DataFrame:
    """The labelled events of the training period (``events`` from :func:`with_keys`)."""
    return events.filter(
        pl.col(DAY).is_between(split.train_start, split.train_end, closed="left"),
        pl.col("label").is_not_null(),
    )


def test_period(events: pl.DataFrame, split: Split) -> pl.DataFrame:
    """Every event of the test period, known-compromised cards included."""
    return events.filter(pl.col(DAY).is_between(split.test_start, split.test_end, closed="left"))


def test_rows(events: pl.DataFrame, split: Split) -> pl.DataFrame:
    """The labelled test-period events the metrics count: cards known to be compromised on
    that day are left out."""
    frauds = (
        events.filter(pl.col("label") == 1, pl.col(DAY) >= split.train_start)
        .group_by(CARD)
        .agg(pl.col(DAY).min().alias("_first_fraud"))
    )
    known_by = pl.col(DAY) - pl.duration(days=split.delay_days)
    return (
        test_period(events, split)
        .filter(pl.col("label").is_not_null())
        .join(frauds, on=CARD, how="left", maintain_order="left")
        .filter(pl.col("_first_fraud").is_null() | (pl.col("_first_fraud") >= known_by))
        .drop("_first_fraud")
    )
