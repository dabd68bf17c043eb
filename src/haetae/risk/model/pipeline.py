"""Features, split, train, test: the path ``haetae train`` and ``haetae evaluate`` share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from haetae.risk.model import protocol
from haetae.risk.model.builder import FeatureBuilder
from haetae.risk.model.metrics import Metrics, metrics_of
from haetae.risk.model.protocol import Split
from haetae.risk.model.train import FraudModel, TrainParams, fit, matrix

Phase = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Evaluation:
    model: FraudModel
    split: Split
    metrics: Metrics
    scores: pl.DataFrame  # event_id, score: every event of the test period
    test_rows: int
    test_frauds: int


def evaluate(
    events: pl.DataFrame,
    builder: FeatureBuilder,
    split: Split,
    params: TrainParams | None = None,
    on_phase: Phase | None = None,
) -> Evaluation:
    """Train on the split's training period and test on its test period."""

    def phase(name: str) -> None:
        if on_phase is not None:
            on_phase(name)

    phase("features")
    # Features look back only, so nothing after the test period is needed.
    history = events.filter(pl.col("occurred_at").dt.date() < split.test_end)
    featured = protocol.with_keys(builder.compute(history))
    train_rows = protocol.training_rows(featured, split)
    if train_rows.is_empty():
        raise ValueError(f"no labelled events from {split.train_start} to {split.train_end}")
    phase("train")
    model = fit(train_rows, builder.names, params, on_phase)
    phase("test")
    period = protocol.test_period(featured, split).sort("occurred_at", "event_id")
    period = period.with_columns(
        pl.Series("score", model.scores(matrix(period, model.feature_names)))
    )
    rows = protocol.test_rows(period, split)
    if rows.is_empty() or rows["label"].n_unique() < 2:
        raise ValueError(
            f"the test period ({split.test_start} to {split.test_end}, end excluded) needs "
            "labelled frauds and genuine events"
        )
    return Evaluation(
        model=model,
        split=split,
        metrics=metrics_of(rows),
        scores=period.select("event_id", "score"),
        test_rows=rows.height,
        test_frauds=int(rows["label"].sum()),
    )
