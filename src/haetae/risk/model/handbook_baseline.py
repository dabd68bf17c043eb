"""The handbook's baseline features (chapter 3), so that training works before the real feature
module lands.

TO BE REPLACED by ``haetae.risk.features``: this builder exists for the CLI and the tests only.
Times are read in UTC (the handbook's simulated clock); the real features use Asia/Seoul.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

WINDOWS_DAYS = (1, 7, 30)
LABEL_DELAY_DAYS = 7  # the terminal's fraud labels are only known a week later
NIGHT_LAST_HOUR = 6  # the handbook's night: 00:00 to 06:59


def _names() -> tuple[str, ...]:
    names = ["amount", "is_weekend", "is_night"]
    for days in WINDOWS_DAYS:
        names += [f"customer_tx_count_{days}d", f"customer_mean_amount_{days}d"]
    for days in WINDOWS_DAYS:
        names += [f"terminal_tx_count_{days}d", f"terminal_fraud_rate_{days}d"]
    return tuple(names)


class HandbookBaseline:
    """Amount, weekend and night flags, the customer's count and mean amount over 1/7/30 days,
    the terminal's count and fraud rate over 1/7/30 days ending a week before the event."""

    def __init__(self) -> None:
        self._names = _names()

    @property
    def names(self) -> Sequence[str]:
        return self._names

    def compute(self, events: pl.DataFrame) -> pl.DataFrame:
        frame = events.sort("occurred_at").with_columns(
            pl.lit(1, pl.Int64).alias("_one"),
            pl.col("amount").cast(pl.Float64).alias("_amount"),
            pl.col("label").fill_null(0).cast(pl.Int64).alias("_fraud"),
        )
        at = "occurred_at"
        columns: list[pl.Expr] = [
            pl.col("_amount").alias("amount"),  # the event's own column, now a float
            (pl.col(at).dt.weekday() >= 6).cast(pl.Int8).alias("is_weekend"),
            (pl.col(at).dt.hour() <= NIGHT_LAST_HOUR).cast(pl.Int8).alias("is_night"),
        ]
        for days in WINDOWS_DAYS:
            window = f"{days}d"
            count = pl.col("_one").rolling_sum_by(at, window).over("customer_id")
            total = pl.col("_amount").rolling_sum_by(at, window).over("customer_id")
            columns += [
                count.cast(pl.Float64).alias(f"customer_tx_count_{days}d"),
                (total / count).alias(f"customer_mean_amount_{days}d"),
            ]
        for days in WINDOWS_DAYS:
            # The window (t - delay - days, t - delay]: the longer rolling sum minus the delay's.
            longer, delay = f"{LABEL_DELAY_DAYS + days}d", f"{LABEL_DELAY_DAYS}d"
            count = pl.col("_one").rolling_sum_by(at, longer) - pl.col("_one").rolling_sum_by(
                at, delay
            )
            frauds = pl.col("_fraud").rolling_sum_by(at, longer) - pl.col("_fraud").rolling_sum_by(
                at, delay
            )
            columns += [
                count.over("terminal_id").cast(pl.Float64).alias(f"terminal_tx_count_{days}d"),
                pl.when(count.over("terminal_id") > 0)
                .then(frauds.over("terminal_id") / count.over("terminal_id"))
                .otherwise(0.0)
                .alias(f"terminal_fraud_rate_{days}d"),
            ]
        return frame.with_columns(columns).drop("_one", "_amount", "_fraud")
