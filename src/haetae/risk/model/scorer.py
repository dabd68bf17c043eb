"""Score one event online: a calibrated 0–100 score and the reasons for it.

This is the hot path. One LightGBM call gives both: with ``pred_contrib`` the trees return
each feature's contribution plus the bias, and their sum is the raw margin, so the score and
its reasons cost a single pass over the trees. ``Booster.predict`` spends most of its time on
one row in Python-side checks and parameter parsing; LightGBM's C API has a single-row path
for this (``LGBM_BoosterPredictForMatSingleRowFast``, its configuration parsed once), which
the scorer uses, falling back to ``Booster.predict`` if the library lacks it.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, cast

import lightgbm as lgb
import numpy as np
import polars as pl

from haetae.risk.model import registry
from haetae.risk.model.explain import DEFAULT_TOP, Reason, ReasonCatalog
from haetae.risk.model.train import FraudModel

FeatureValue = float | int | bool | None
_PREDICT_CONTRIB = 3  # C_API_PREDICT_CONTRIB
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class BatchScores(NamedTuple):
    scores: np.ndarray  # int64, 0–100, as ``Scorer.score`` rounds them
    reasons: pl.Series  # per row, the codes of its top reasons, largest first


class ModelScore(NamedTuple):
    score: int  # 0–100: about this many in 100 events so scored were fraud (see calibration)
    reasons: tuple[Reason, ...]


class Scorer:
    """A loaded model ready to score events one at a time (thread-safe)."""

    def __init__(
        self,
        model: FraudModel,
        catalog: ReasonCatalog | None = None,
        *,
        top: int = DEFAULT_TOP,
        version: str = "",
    ) -> None:
        self.model = model
        self.version = version
        self._names = model.feature_names
        self._catalog = catalog or ReasonCatalog.load(model.feature_names)
        self._top = top
        self._lock = threading.Lock()
        self._contributions = _contributions_function(model.booster, len(self._names))

    @classmethod
    def load(
        cls, models_dir: Path, version: str = "latest", available: Sequence[str] | None = None
    ) -> Scorer:
        stored = registry.load(models_dir, version, available)
        return cls(stored.model, version=stored.version)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    def score(self, features: Mapping[str, FeatureValue]) -> ModelScore:
        """Score one event's features (by name; absent or ``None`` means missing)."""
        values = [_as_float(features.get(name)) for name in self._names]
        with self._lock:
            contributions = self._contributions(values)
        margin = math.fsum(contributions)
        probability = self.model.calibration.probability_one(margin)
        reasons = self._catalog.explain(contributions, values, self._top)
        return ModelScore(round(100.0 * probability), tuple(reasons))

    def score_matrix(self, values: np.ndarray) -> BatchScores:
        """Score many events at once (rows of features in :attr:`feature_names` order, NaN
        for missing): the scores and reason codes :meth:`score` gives one by one, from one
        LightGBM call over every row (the replay's path: ``haetae.risk.replay``)."""
        contributions = np.asarray(
            self.model.booster.predict(values, pred_contrib=True, num_threads=1),
            dtype=np.float64,
        )
        margins = contributions.sum(axis=1)
        # Python's round, as one at a time: half to even, like numpy's
        scores = np.rint(100.0 * self.model.calibration.probability(margins)).astype(np.int64)
        return BatchScores(scores, self._catalog.top_codes(contributions[:, :-1], self._top))


def _as_float(value: FeatureValue) -> float:
    return math.nan if value is None else float(value)


def _contributions_function(
    booster: lgb.Booster, n_features: int
) -> Callable[[list[float]], list[float]]:
    """A function from one row to its contributions (features, then bias); not thread-safe."""
    try:
        return _FastContributions(booster, n_features)
    except (AttributeError, OSError, lgb.basic.LightGBMError):
        return lambda row: [
            float(v)
            for v in booster.predict(np.asarray([row], dtype=np.float64), pred_contrib=True)[0]
        ]


class _FastContributions:
    """LightGBM's single-row fast path, through the library the Python package loaded."""

    def __init__(self, booster: lgb.Booster, n_features: int) -> None:
        self._booster = booster  # the configuration points into it: keep it alive
        self._lib = lgb.basic._LIB
        self._config = ctypes.c_void_p()
        lgb.basic._safe_call(
            self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_CONTRIB),
                ctypes.c_int(0),  # first tree
                ctypes.c_int(-1),  # every tree
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(n_features),
                lgb.basic._c_str("num_threads=1"),  # one row: threads only add overhead
                ctypes.byref(self._config),
            )
        )
        self._row = (ctypes.c_double * n_features)()
        self._out = (ctypes.c_double * (n_features + 1))()
        self._out_len = ctypes.c_int64()

    def __call__(self, row: list[float]) -> list[float]:
        self._row[:] = cast("list[ctypes.c_double | float]", row)  # list is invariant
        lgb.basic._safe_call(
            self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self._config, self._row, ctypes.byref(self._out_len), self._out
            )
        )
        return self._out[:]

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._lib.LGBM_FastConfigFree(config)
