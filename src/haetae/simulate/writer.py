"""One history out of the simulators' frames: conformed, in time order, with event ids;
written as Parquet and summarised."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import polars as pl

from haetae.risk.events import conform, empty_events


@dataclass(frozen=True)
class Summary:
    events: int
    frauds: int
    by_kind: dict[str, int]
    by_scenario: dict[str, int]  # fraudulent events per scenario

    @property
    def fraud_rate(self) -> float:
        return self.frauds / self.events if self.events else 0.0


def assemble(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """The events of ``frames`` sorted by time (stable, so ties keep a reproducible order),
    numbered ``evt-000000001`` onwards."""
    ordered = [_in_time_order(conform(frame)) for frame in frames if frame.height]
    if not ordered:
        return empty_events()
    # Each profile comes (nearly) sorted; merging beats sorting millions of rows of strings.
    events = reduce(lambda left, right: left.merge_sorted(right, "occurred_at"), ordered)
    number = pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(9)
    return events.with_columns(event_id=pl.lit("evt-") + number)


def _in_time_order(frame: pl.DataFrame) -> pl.DataFrame:
    if frame["occurred_at"].is_sorted():
        return frame.with_columns(pl.col("occurred_at").set_sorted())
    return frame.sort("occurred_at", maintain_order=True)


def write_events(events: pl.DataFrame, path: Path) -> Path:
    """Write ``events`` to ``path``; a directory (existing, or named without a suffix)
    receives ``events.parquet``."""
    if path.is_dir() or not path.suffix:
        path = path / "events.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    events.write_parquet(path, statistics=True)
    return path


def summarize(events: pl.DataFrame) -> Summary:
    kinds = events.group_by("kind").len().sort("kind")
    frauds = events.filter(pl.col("label") == 1)
    scenarios = frauds.group_by("scenario").len().sort("scenario")
    return Summary(
        events=events.height,
        frauds=frauds.height,
        by_kind=dict(zip(kinds["kind"].to_list(), kinds["len"].to_list(), strict=True)),
        by_scenario=dict(
            zip(scenarios["scenario"].to_list(), scenarios["len"].to_list(), strict=True)
        ),
    )
