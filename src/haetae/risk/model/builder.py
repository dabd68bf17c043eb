"""The port through which the model gets its features (``haetae.risk.features`` fills it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import polars as pl


class FeatureBuilder(Protocol):
    """Adds one column per feature to a history of events (:data:`EVENT_SCHEMA` columns).

    ``compute`` keeps every input row and column, in any order; features may only look at the
    past of each event (and at labels old enough to be known then).
    """

    @property
    def names(self) -> Sequence[str]: ...

    def compute(self, events: pl.DataFrame) -> pl.DataFrame: ...
