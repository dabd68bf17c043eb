"""From the model's raw margin (log-odds) to a probability that means what it says.

A score of 0–100 is ``100 × P(fraud)`` as observed on the validation slice, the most recent
days of training that the trees did not learn from: among events scored 30, about 30 in 100
were fraud there. The trees' own probabilities are not that: boosting is over-confident on the
data it fit, and that drifts with every retraining.

The map is isotonic (pool adjacent violators, so free of any assumed shape), made strictly
increasing by joining the centres of its steps with straight lines: events keep the model's
ranking, so the metrics of the scores are those of the model, and ties only happen where the
margins tie. Beyond the outermost centres the line continues with the slope of a Platt fit
(kept between 0.05 and 1), so the very highest scores still rank.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.isotonic import IsotonicRegression  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

FloatArray = NDArray[np.float64]
MIN_SLOPE = 0.05
# A knot of a handful of events is noise: isotonic steps are merged until a knot has about
# 2% of the events (at least 5, at most 50).
MIN_EVENTS_PER_KNOT = 5
MAX_EVENTS_PER_KNOT = 50


@dataclass(frozen=True, slots=True)
class Calibration:
    """Knots ``(margin, log-odds)``, increasing; linear in log-odds between them and with
    ``slope`` beyond the ends."""

    margins: tuple[float, ...]
    log_odds: tuple[float, ...]
    slope: float

    def probability(self, margin: FloatArray) -> FloatArray:
        x = np.asarray(margin, dtype=np.float64)
        knots_x, knots_y = np.asarray(self.margins), np.asarray(self.log_odds)
        y = np.interp(x, knots_x, knots_y)
        y = np.where(x < knots_x[0], knots_y[0] + self.slope * (x - knots_x[0]), y)
        y = np.where(x > knots_x[-1], knots_y[-1] + self.slope * (x - knots_x[-1]), y)
        return 1.0 / (1.0 + np.exp(-y))

    def probability_one(self, margin: float) -> float:
        """The same for one margin, without numpy's per-call cost (the online path)."""
        xs, ys = self.margins, self.log_odds
        if margin <= xs[0]:
            y = ys[0] + self.slope * (margin - xs[0])
        elif margin >= xs[-1]:
            y = ys[-1] + self.slope * (margin - xs[-1])
        else:
            i = _bisect(xs, margin)
            t = (margin - xs[i - 1]) / (xs[i] - xs[i - 1])
            y = ys[i - 1] + t * (ys[i] - ys[i - 1])
        return _sigmoid(y)

    def as_dict(self) -> dict[str, object]:
        return {
            "method": "isotonic-centred",
            "margins": list(self.margins),
            "log_odds": list(self.log_odds),
            "slope": self.slope,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Calibration:
        margins, log_odds, slope = data["margins"], data["log_odds"], data["slope"]
        assert isinstance(margins, list) and isinstance(log_odds, list)
        assert isinstance(slope, int | float)
        if len(margins) != len(log_odds) or not margins:
            raise ValueError("calibration knots are missing or do not pair up")
        return cls(tuple(map(float, margins)), tuple(map(float, log_odds)), float(slope))


def fit(margins: FloatArray, labels: NDArray[np.integer]) -> Calibration:
    """Fit on validation margins and their 0/1 labels (both classes needed)."""
    order = np.argsort(np.asarray(margins, dtype=np.float64), kind="stable")
    x = np.asarray(margins, dtype=np.float64)[order]
    y = np.asarray(labels, dtype=np.float64)[order]
    if not (0 < y.sum() < len(y)):
        raise ValueError("calibration needs both frauds and genuine events")
    platt = LogisticRegression(C=1e6).fit(x.reshape(-1, 1), y)
    # Beyond the data the slope is a guess: never flat (ranks stay), never steeper than the
    # margin itself (nearly separable data would otherwise give a cliff, and ties at 0 and 100).
    slope = min(max(float(platt.coef_[0, 0]), MIN_SLOPE), 1.0)
    steps = IsotonicRegression().fit_transform(x, y)
    least = min(MAX_EVENTS_PER_KNOT, max(MIN_EVENTS_PER_KNOT, len(x) // 50))
    knots = _pool(_knots(x, y, np.asarray(steps), least), prior=float(y.mean()))
    centres = [total / n for total, _, n in knots]
    rates = [_rate(frauds, n, float(y.mean())) for _, frauds, n in knots]
    return Calibration(tuple(centres), tuple(math.log(r / (1 - r)) for r in rates), slope)


Knot = tuple[float, float, float]  # sum of margins, frauds, events


def _knots(x: FloatArray, y: FloatArray, steps: FloatArray, least: int) -> list[Knot]:
    """One knot per isotonic step, steps of fewer than ``least`` events merged with the next
    (the last with the one before)."""
    bounds = np.r_[np.flatnonzero(np.r_[True, np.diff(steps) != 0]), len(x)]
    knots: list[Knot] = []
    pending: Knot = (0.0, 0.0, 0.0)
    for lo, hi in itertools.pairwise(bounds):
        pending = _merge(pending, (float(x[lo:hi].sum()), float(y[lo:hi].sum()), float(hi - lo)))
        if pending[2] >= least:
            knots.append(pending)
            pending = (0.0, 0.0, 0.0)
    if pending[2]:
        knots[-1:] = [_merge(knots[-1], pending)] if knots else [pending]
    return knots


def _pool(knots: list[Knot], prior: float) -> list[Knot]:
    """Merge neighbours until both the centres and the (smoothed) rates strictly increase."""
    pooled: list[Knot] = []
    for knot in knots:
        pooled.append(knot)
        while len(pooled) > 1:
            (s0, f0, n0), (s1, f1, n1) = pooled[-2], pooled[-1]
            if s1 / n1 > s0 / n0 and _rate(f1, n1, prior) > _rate(f0, n0, prior):
                break
            pooled[-2:] = [_merge(pooled[-2], pooled[-1])]
    return pooled


def _merge(a: Knot, b: Knot) -> Knot:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def _rate(frauds: float, events: float, prior: float) -> float:
    """The fraud rate, pulled by one pseudo-event towards the overall rate: never 0 or 1."""
    return (frauds + prior) / (events + 1.0)


def _bisect(xs: tuple[float, ...], value: float) -> int:
    lo, hi = 0, len(xs)
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _sigmoid(y: float) -> float:
    if y >= 0:
        return 1.0 / (1.0 + math.exp(-y))
    z = math.exp(y)
    return z / (1.0 + z)
