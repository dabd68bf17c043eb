"""The per-event interpreter both online stores share: one event row (a dict of
:data:`~haetae.risk.events.EVENT_SCHEMA` columns) in, plain Python values out."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence, Sized
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from haetae.risk.features.definitions import (
    LOCAL_UTC_OFFSET,
    NIGHT_LAST_HOUR,
    WEEKEND_DAYS,
    Feature,
)
from haetae.risk.features.plan import Measure, Reader, Track

Row = Mapping[str, Any]
Value = float | bool | None
KeyFn = Callable[[Row], Hashable | None]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
_OFFSETS_US = {currency: offset // MICROSECOND for currency, offset in LOCAL_UTC_OFFSET.items()}

# Reader codes: how a feature's value comes out of its track's sums.
VALUE, QUOTIENT, DISTINCT, IS_NEW, HOURS_SINCE = range(5)
CompiledReader = tuple[str, int, int, int, int, int]  # name, code, window, m0, m1, distinct


def micros(moment: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding)."""
    return (moment - EPOCH) // MICROSECOND


def micros_of(row: Row) -> int:
    moment = row["occurred_at"]
    return moment if isinstance(moment, int) else micros(moment)


class Clock:
    """``micros_of`` remembering its last answer: ``update`` follows ``features`` with the
    same time, and a datetime subtraction costs more than an identity check."""

    __slots__ = ("_micros", "_moment")

    def __init__(self) -> None:
        self._moment: object = None
        self._micros = 0

    def __call__(self, row: Row) -> int:
        moment = row["occurred_at"]
        if moment is not self._moment:
            self._micros = micros_of(row)
            self._moment = moment
        return self._micros


def key_function(columns: tuple[str, ...]) -> KeyFn:
    """The entity key of a row: its value, or a tuple for several columns; None if any is
    missing (the event has no such entity)."""
    if len(columns) == 1:
        (column,) = columns

        def single(row: Row) -> Hashable | None:
            return row.get(column)

        return single

    pick = itemgetter(*columns)

    def composite(row: Row) -> Hashable | None:
        try:
            values = pick(row)
        except KeyError:  # a partial row: the slow way
            values = tuple(row.get(c) for c in columns)
        return None if None in values else values

    return composite


def measure_function(measure: Measure) -> Callable[[Row], int]:
    column = measure.column or ""
    if measure.op == "one":
        return lambda row: 1
    if measure.op == "value":
        return lambda row: int(row.get(column) or 0)
    if measure.op == "present":
        return lambda row: int(row.get(column) is not None)
    wanted = measure.value
    # ``is not None`` first: a null is never equal; bools compare as 0/1 like Polars' casts.
    return lambda row: int(row.get(column) is not None and row.get(column) == wanted)


def compile_readers(track: Track) -> tuple[CompiledReader, ...]:
    return tuple(_compile(reader) for reader in track.readers)


def _compile(reader: Reader) -> CompiledReader:
    agg = reader.feature.agg
    m = reader.measures
    if agg in ("count", "sum"):
        return (reader.feature.name, VALUE, reader.window, m[0], 0, -1)
    if agg in ("mean", "rate"):
        return (reader.feature.name, QUOTIENT, reader.window, m[0], m[1], -1)
    if agg == "distinct":
        return (reader.feature.name, DISTINCT, reader.window, 0, 0, reader.distinct)
    if agg == "is_new":
        return (reader.feature.name, IS_NEW, reader.window, m[0], 0, -1)
    return (reader.feature.name, HOURS_SINCE, -1, 0, 0, -1)


def read(
    readers: tuple[CompiledReader, ...],
    sums: Sequence[Sequence[int]],
    counters: Sequence[Sized],
    last: int | None,
    now: int,
    out: dict[str, Value],
) -> None:
    """Write a track's features into ``out`` from its per-window sums, its distinct-value
    counters and the time of its last event."""
    for name, code, window, m0, m1, distinct in readers:
        if code == VALUE:
            out[name] = sums[window][m0]
        elif code == QUOTIENT:
            den = sums[window][m1]
            out[name] = sums[window][m0] / den if den else None
        elif code == DISTINCT:
            out[name] = len(counters[distinct])
        elif code == IS_NEW:
            out[name] = sums[window][m0] == 0
        else:
            out[name] = None if last is None else (now - last) / HOUR_US


def empty_values(readers: tuple[CompiledReader, ...], present: bool) -> dict[str, Value]:
    """The track's features for a key with no history (``present``) or no key at all."""
    if not present:
        return {reader[0]: None for reader in readers}
    values: dict[str, Value] = {}
    for name, code, *_ in readers:
        if code in (VALUE, DISTINCT):
            values[name] = 0
        elif code == IS_NEW:
            values[name] = True
        else:
            values[name] = None
    return values


def event_values(features: tuple[Feature, ...], row: Row, now: int, out: dict[str, Value]) -> None:
    local = now + _OFFSETS_US.get(row.get("currency") or "", 0)
    hour = local // HOUR_US % 24
    for feature in features:
        field = feature.column
        if field == "amount":
            out[feature.name] = row.get("amount")
        elif field == "hour_of_day":
            out[feature.name] = hour
        elif field == "is_night":
            out[feature.name] = hour <= NIGHT_LAST_HOUR
        else:
            out[feature.name] = (local // DAY_US + EPOCH_WEEKDAY) % 7 in WEEKEND_DAYS


def ratio_values(features: tuple[Feature, ...], row: Row, out: dict[str, Value]) -> None:
    """Derived features, after the features they divide by are in ``out``."""
    for feature in features:
        numerator = row.get(feature.column or "")
        denominator = out[feature.over or ""]
        if row.get("kind") not in feature.kinds or numerator is None or not denominator:
            out[feature.name] = None
        else:
            out[feature.name] = numerator / denominator
