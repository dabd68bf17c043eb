"""Where backtests read past events: any source of a labelled event frame.

A history is a frame of :data:`haetae.risk.events.EVENT_SCHEMA` columns (with ``label``)
plus one column per feature, named as rules name it (``payee.is_new``) — the features'
values as they were when each event happened. The event's own names may use the schema's
columns (``device_id`` for ``device.id``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import polars as pl


class HistoryUnavailable(Exception):
    """The history cannot be read (not there yet, unreadable)."""


class HistorySource(Protocol):
    def scan(self) -> pl.LazyFrame:
        """The events, lazily: backtests filter and select before anything is read."""
        ...


class ParquetHistory:
    """Parquet files: one file, a directory of them, or a glob (``events/*.parquet``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def scan(self) -> pl.LazyFrame:
        if not any(c in str(self.path) for c in "*?[") and not self.path.exists():
            raise HistoryUnavailable(f"no event history at {self.path}")
        return pl.scan_parquet(self.path)


class FrameHistory:
    """A frame in memory (tests, notebooks)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def scan(self) -> pl.LazyFrame:
        return self.frame.lazy()
