"""Offline features: the catalogue computed in batch over a whole history.

Polars prepares the columns and assembles the result; the windows are computed with numpy
on one array per track, without joins or per-row Python:

* The track's events are put in *entity-major* order (all of one entity's events together,
  in stream order), so an entity's history is a contiguous block and an event's position
  ``g`` in that order identifies it.
* An earlier event ``e`` counts in the window of every later event of its entity from the
  first one at or after ``time(e) + delay`` (the next one, ``g + 1``, without a delay) up
  to, not including, the first one at or after ``time(e) + delay + window``. Both ends are
  binary searches on a sort key (entity, time rank); a search that runs past the entity's
  last event lands on the next entity's first, i.e. the end of the block.
* Adding each event's measures at its start, subtracting them at its end and taking one
  cumulative sum gives every event's window sums at once (the changes of one entity cancel
  inside its block). A distinct count is the same with one more end: a value stops counting
  for ``e`` where the same value occurs again, and that later event counts it instead.

About 6 s for the handbook's 1.8 million payments (docs/features.md, Performance).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from haetae.risk.events import EVENT_SCHEMA
from haetae.risk.features.definitions import (
    FEATURES,
    LOCAL_UTC_OFFSET,
    NIGHT_LAST_HOUR,
    WEEKEND_DAYS,
    Feature,
)
from haetae.risk.features.plan import (
    Measure,
    Reader,
    Track,
    build_tracks,
    event_features,
    ratio_features,
)
from haetae.risk.features.rowops import DAY_US, EPOCH_WEEKDAY, HOUR_US, MICROSECOND

_ROW = "__row"
_TIME = "__time_us"
_LAST = "__last_us"
_TIME_US = pl.col("occurred_at").dt.epoch("us")

Ints = np.ndarray  # one-dimensional int64 arrays throughout


def compute(events: pl.DataFrame, features: tuple[Feature, ...] = FEATURES) -> pl.DataFrame:
    """``events`` (the columns of :data:`~haetae.risk.events.EVENT_SCHEMA`; missing ones are
    added as nulls, others are kept) sorted by ``occurred_at`` (ties keep their order: that
    is the stream order), with one more column per feature, named after it."""
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in EVENT_SCHEMA.items()
        if name not in events.columns
    ]
    frame = events.with_columns(missing).sort("occurred_at", maintain_order=True)
    frame = frame.with_row_index(_ROW)
    frame = frame.with_columns(_event_columns(event_features(features)))
    clock = _Clock(frame.get_column("occurred_at").dt.epoch("us").to_numpy())
    rows = frame.select(_ROW)
    tracks = build_tracks(features)
    used = sorted({c for t in tracks for c in (*_measure_columns(t), *(c for _, c in t.distincts))})
    blocks: dict[str, _Blocks] = {}
    columns: list[pl.Series] = []
    for track in tracks:
        if track.entity not in blocks:
            blocks[track.entity] = _Blocks(frame, track.keys, used, clock)
        part = _track_columns(track, blocks[track.entity])
        # narrow joins, one wide stack: joining onto the growing frame copies it each time
        if part.height == frame.height:
            aligned = part.sort(_ROW)
        else:
            aligned = rows.join(part, on=_ROW, how="left", maintain_order="left")
        columns += aligned.drop(_ROW).get_columns()
    frame = frame.hstack(columns)
    frame = frame.with_columns(_ratio(feature) for feature in ratio_features(features))
    return frame.drop(_ROW)


def _event_columns(features: tuple[Feature, ...]) -> list[pl.Expr]:
    offsets = {currency: offset // MICROSECOND for currency, offset in LOCAL_UTC_OFFSET.items()}
    offset = pl.col("currency").replace_strict(offsets, default=0, return_dtype=pl.Int64)
    local = _TIME_US + offset.fill_null(0)
    hour = local // HOUR_US % 24
    computed = {
        "amount": pl.col("amount"),
        "hour_of_day": hour,
        "is_night": hour <= NIGHT_LAST_HOUR,
        "is_weekend": ((local // DAY_US + EPOCH_WEEKDAY) % 7).is_in(WEEKEND_DAYS),
    }
    return [computed[feature.column or ""].alias(feature.name) for feature in features]


def _ratio(feature: Feature) -> pl.Expr:
    numerator = pl.col(feature.column or "")
    denominator = pl.col(feature.over or "")
    defined = pl.col("kind").is_in(feature.kinds) & (denominator != 0)
    return pl.when(defined).then(numerator / denominator).alias(feature.name)


class _Clock:
    """The stream's times (sorted) and their ranks among the distinct times."""

    def __init__(self, times: Ints) -> None:
        self.times = times
        new = np.ones(len(times), dtype=bool)
        new[1:] = times[1:] != times[:-1]
        self.distinct = times[new]
        self.rank = np.cumsum(new) - 1
        self._after: dict[timedelta, Ints] = {}

    def rank_at_or_after(self, rows: Ints, shift: timedelta) -> Ints:
        """For rows given by stream position, the rank of the first distinct time at or
        after their time + ``shift`` (one past the last rank when there is none)."""
        if shift not in self._after:
            # searched for every row at once, in time order: sorted needles search fast
            self._after[shift] = np.searchsorted(self.distinct, self.times + shift // MICROSECOND)
        return self._after[shift][rows]


class _Blocks:
    """One entity's events in entity-major order; positions index this order. Shared by
    the entity's tracks (the customer has several)."""

    def __init__(
        self, frame: pl.DataFrame, keys: tuple[str, ...], columns: list[str], clock: _Clock
    ) -> None:
        present = frame.select(list(dict.fromkeys([_ROW, "kind", *keys, *columns]))).filter(
            pl.all_horizontal(pl.col(k).is_not_null() for k in keys)
        )
        ids = present.select(_ids(keys)).to_series().to_numpy().astype(np.int64)
        order = np.argsort(ids, kind="stable")  # stream order is kept inside each entity
        self.frame = present[order]
        self.rows: Ints = self.frame.get_column(_ROW).to_numpy().astype(np.int64)
        self.clock = clock
        self.span = len(clock.distinct) + 1
        self.entity = ids[order]
        self.key = self.entity * self.span + clock.rank[self.rows]
        self.size = len(self.rows)
        self.end = np.searchsorted(self.key, (self.entity + 1) * self.span)
        self.start = np.searchsorted(self.key, self.entity * self.span)
        self._after: dict[timedelta, Ints] = {}

    def at_or_after(self, where: Ints, shift: timedelta) -> Ints:
        """For the events at positions ``where``: the position of their entity's first event
        at or after their time + ``shift`` (the end of the block when none)."""
        if shift not in self._after:
            ranks = self.clock.rank_at_or_after(self.rows, shift)
            self._after[shift] = np.searchsorted(self.key, self.entity * self.span + ranks)
        return self._after[shift][where]

    def column(self, expr: pl.Expr) -> np.ndarray:
        # with_columns, not select: a literal is repeated for every event
        return self.frame.with_columns(expr.alias("__column")).get_column("__column").to_numpy()

    def window_sum(self, starts: Ints, ends: Ints, values: Ints) -> Ints:
        """Per position, the sum of ``values`` whose [start, end) range covers it."""
        changes = np.zeros(self.size + 1, dtype=np.int64)
        np.add.at(changes, starts, values)
        np.add.at(changes, ends, -values)
        return np.cumsum(changes[: self.size])


def _ids(keys: tuple[str, ...]) -> pl.Expr:
    if len(keys) == 1:
        return pl.col(keys[0]).cast(pl.Categorical).to_physical()
    return pl.struct(keys).rank("dense")


def _measure(measure: Measure) -> pl.Expr:
    if measure.op == "one":
        return pl.lit(1, dtype=pl.Int64)
    column = pl.col(measure.column or "")
    if measure.op == "value":
        return column.fill_null(0).cast(pl.Int64)
    if measure.op == "present":
        return column.is_not_null().cast(pl.Int64)
    return column.eq(pl.lit(measure.value)).fill_null(value=False).cast(pl.Int64)


def _sum_column(window: int, measure: int) -> str:
    return f"__s{window}_{measure}"


def _distinct_column(index: int) -> str:
    return f"__d{index}"


def _measure_columns(track: Track) -> list[str]:
    return [m.column for m in track.measures if m.column]


def _track_columns(track: Track, blocks: _Blocks) -> pl.DataFrame:
    """``_ROW`` and the track's features, for the events that have the track's entity."""
    clock = blocks.clock
    own = np.flatnonzero(blocks.column(pl.col("kind").is_in(track.kinds)))
    columns: dict[str, np.ndarray] = {
        _ROW: blocks.rows,
        _TIME: clock.times[blocks.rows],
        **_sums(track, blocks, own),
        **_distincts(track, blocks, own),
    }
    if track.wants_last:
        columns[_LAST] = _last_time(blocks, own)
    state = pl.DataFrame(columns).with_columns(pl.col(_ROW).cast(pl.UInt32))
    if track.wants_last:
        state = state.with_columns(pl.when(pl.col(_LAST) >= 0).then(pl.col(_LAST)).alias(_LAST))
    return state.select(_ROW, *(_read(reader) for reader in track.readers))


def _ends(track: Track, blocks: _Blocks, where: Ints, window: timedelta | None) -> Ints:
    if window is None:
        return blocks.end[where]
    return blocks.at_or_after(where, track.delay + window)


def _sums(track: Track, blocks: _Blocks, own: Ints) -> dict[str, Ints]:
    if not track.measures:
        return {}
    values = [blocks.column(_measure(m)).astype(np.int64)[own] for m in track.measures]
    starts = own + 1  # the entity's next event
    if track.delay:
        starts = blocks.at_or_after(own, track.delay)
    out: dict[str, Ints] = {}
    for k, window in enumerate(track.windows):
        ends = _ends(track, blocks, own, window)
        for j, value in enumerate(values):
            out[_sum_column(k, j)] = blocks.window_sum(starts, ends, value)
    return out


def _distincts(track: Track, blocks: _Blocks, own: Ints) -> dict[str, Ints]:
    out: dict[str, Ints] = {}
    for j, (k, column) in enumerate(track.distincts):
        where = own[blocks.column(pl.col(column).is_not_null())[own]]
        ids = pl.col(column).cast(pl.Categorical).to_physical().fill_null(0)
        values = blocks.column(ids).astype(np.int64)[where]
        # the entity's next event with the same value takes over counting it
        order = np.lexsort((where, values, blocks.entity[where]))
        ranked = where[order]
        same = (blocks.entity[ranked[1:]] == blocks.entity[ranked[:-1]]) & (
            values[order[1:]] == values[order[:-1]]
        )
        repeat = np.full(len(where), blocks.size, dtype=np.int64)
        repeat[order[:-1][same]] = ranked[1:][same] + 1
        ends = np.minimum(_ends(track, blocks, where, track.windows[k]), repeat)
        out[_distinct_column(j)] = blocks.window_sum(where + 1, ends, np.ones_like(where))
    return out


def _last_time(blocks: _Blocks, own: Ints) -> Ints:
    """Per position, the time of the entity's last earlier event of the track (-1: none)."""
    marks = np.full(blocks.size, -1, dtype=np.int64)
    marks[own] = own
    latest = np.maximum.accumulate(marks)
    before = np.full(blocks.size, -1, dtype=np.int64)
    before[1:] = latest[:-1]
    before[before < blocks.start] = -1  # the latest was another entity's
    times = blocks.clock.times[blocks.rows]
    return np.where(before >= 0, times[np.maximum(before, 0)], -1)


def _read(reader: Reader) -> pl.Expr:
    feature = reader.feature
    agg = feature.agg
    m = reader.measures
    if agg in ("count", "sum"):
        value = pl.col(_sum_column(reader.window, m[0]))
    elif agg in ("mean", "rate"):
        numerator = pl.col(_sum_column(reader.window, m[0]))
        denominator = pl.col(_sum_column(reader.window, m[1]))
        value = pl.when(denominator != 0).then(numerator / denominator)
    elif agg == "distinct":
        value = pl.col(_distinct_column(reader.distinct))
    elif agg == "is_new":
        value = pl.col(_sum_column(reader.window, m[0])) == 0
    else:
        value = (pl.col(_TIME) - pl.col(_LAST)) / HOUR_US
    return value.alias(feature.name)


class OfflineFeatures:
    """The catalogue (or part of it) as a batch feature builder, the shape model training
    takes: ``names`` and ``compute(events)``."""

    def __init__(self, features: tuple[Feature, ...] = FEATURES) -> None:
        self._features = features

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self._features)

    def compute(self, events: pl.DataFrame) -> pl.DataFrame:
        return compute(events, self._features)
