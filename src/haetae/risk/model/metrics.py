"""The handbook's three test metrics: AUC ROC, Average Precision and Card Precision@k.

Card Precision@k is what a team of investigators sees: each day they can check ``k`` cards.
Per day, every card takes its highest score and its worst label of that day; the ``k``
highest-scored cards are checked, and the share of them truly compromised is that day's
precision (always divided by ``k``, as the handbook does). A compromised card found on one day
is blocked, so it leaves the following days. The metric is the mean over days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, roc_auc_score  # type: ignore[import-untyped]

from haetae.risk.model.protocol import CARD, DAY


@dataclass(frozen=True, slots=True)
class Metrics:
    auc_roc: float
    average_precision: float
    card_precision_at_100: float

    def as_dict(self) -> dict[str, float]:
        return {
            "auc_roc": self.auc_roc,
            "average_precision": self.average_precision,
            "card_precision_at_100": self.card_precision_at_100,
        }


def auc_roc(labels: ArrayLike, scores: ArrayLike) -> float:
    return float(roc_auc_score(labels, scores))


def average_precision(labels: ArrayLike, scores: ArrayLike) -> float:
    return float(average_precision_score(labels, scores))


def card_precision_daily(scored: pl.DataFrame, k: int = 100, score: str = "score") -> list[float]:
    """Card precision at ``k`` of each day, in day order (``scored`` has the protocol's day
    and card columns, ``label`` and ``score``)."""
    per_card = scored.group_by(DAY, CARD).agg(
        pl.col(score).max().alias("_score"), pl.col("label").max().alias("_label")
    )
    found: set[str] = set()
    daily: list[float] = []
    for (_,), day in per_card.sort(DAY).group_by(DAY, maintain_order=True):
        # Ties broken by card key, so the metric does not depend on row order.
        top = (
            day.filter(~pl.col(CARD).is_in(list(found)))
            .sort(["_score", CARD], descending=[True, False])
            .head(k)
        )
        hits = top.filter(pl.col("_label") == 1)[CARD].to_list()
        daily.append(len(hits) / k)
        found.update(hits)
    return daily


def card_precision_at_k(scored: pl.DataFrame, k: int = 100, score: str = "score") -> float:
    daily = card_precision_daily(scored, k, score)
    return float(np.mean(daily)) if daily else 0.0


def metrics_of(scored: pl.DataFrame, score: str = "score") -> Metrics:
    labels = scored["label"].to_numpy()
    scores = scored[score].to_numpy()
    return Metrics(
        auc_roc=auc_roc(labels, scores),
        average_precision=average_precision(labels, scores),
        card_precision_at_100=card_precision_at_k(scored, 100, score),
    )
