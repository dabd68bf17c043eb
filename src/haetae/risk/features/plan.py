"""The catalogue grouped into *tracks*, the unit every backend keeps state for.

A track is one entity, one set of event kinds and one delay: its features share the events
they look at, so a store keeps one history per track and entity key. Inside a track each
event carries a few numbers (*measures*: 1, its amount, whether it was declined...) and the
window features are sums of those measures over the track's windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from haetae.risk.events import EventKind
from haetae.risk.features.definitions import ENTITIES, FEATURES, Feature

MeasureOp = Literal["one", "value", "equals", "present"]


@dataclass(frozen=True, slots=True)
class Measure:
    """A number per event: 1, ``column`` (null as 0), ``column == value``, ``column`` known."""

    op: MeasureOp
    column: str | None = None
    value: bool | int | None = None


ONE = Measure("one")


@dataclass(frozen=True, slots=True)
class Reader:
    """Where a feature's value comes from inside its track's state."""

    feature: Feature
    window: int  # index into Track.windows; -1 for hours_since
    measures: tuple[int, ...]  # indices into Track.measures (numerator first)
    distinct: int = -1  # index into Track.distincts


@dataclass(frozen=True, slots=True)
class Track:
    entity: str
    kinds: frozenset[EventKind]
    delay: timedelta
    windows: tuple[timedelta | None, ...]  # ascending, all history (None) last
    measures: tuple[Measure, ...]
    distincts: tuple[tuple[int, str], ...]  # (window index, column)
    readers: tuple[Reader, ...]
    wants_last: bool  # keeps the time of the last event (hours_since)

    @property
    def keys(self) -> tuple[str, ...]:
        return ENTITIES[self.entity]

    @property
    def name(self) -> str:
        """Stable identifier (Redis key prefix): entity, kinds and delay."""
        kinds = "+".join(sorted(self.kinds))
        return f"{self.entity}:{kinds}:{int(self.delay.total_seconds())}"

    @property
    def labelled(self) -> bool:
        """Whether a late label changes this track's sums (see ``record_label``)."""
        return any(m.column == "label" for m in self.measures)


def _measures_of(feature: Feature) -> tuple[Measure, ...]:
    if feature.agg in ("count", "is_new"):
        return (ONE,)
    if feature.agg == "sum":
        return (Measure("value", feature.column),)
    if feature.agg == "mean":
        return (Measure("value", feature.column), ONE)
    if feature.agg == "rate":
        return (
            Measure("equals", feature.column, feature.value),
            Measure("present", feature.column),
        )
    return ()


def _window_order(window: timedelta | None) -> timedelta:
    return timedelta.max if window is None else window


def _track(entity: str, kinds: frozenset[EventKind], delay: timedelta, fs: list[Feature]) -> Track:
    windowed = [f for f in fs if f.agg != "hours_since"]
    windows = tuple(sorted({f.window for f in windowed}, key=_window_order))
    measures: list[Measure] = []
    distincts: list[tuple[int, str]] = []
    readers: list[Reader] = []
    for feature in fs:
        if feature.agg == "hours_since":
            readers.append(Reader(feature, -1, ()))
            continue
        window = windows.index(feature.window)
        indices: list[int] = []
        for measure in _measures_of(feature):
            if measure not in measures:
                measures.append(measure)
            indices.append(measures.index(measure))
        distinct = -1
        if feature.agg == "distinct":
            assert feature.column is not None
            spec = (window, feature.column)
            if spec not in distincts:
                distincts.append(spec)
            distinct = distincts.index(spec)
        readers.append(Reader(feature, window, tuple(indices), distinct))
    return Track(
        entity=entity,
        kinds=kinds,
        delay=delay,
        windows=windows,
        measures=tuple(measures),
        distincts=tuple(distincts),
        readers=tuple(readers),
        wants_last=any(f.agg == "hours_since" for f in fs),
    )


def build_tracks(features: tuple[Feature, ...] = FEATURES) -> tuple[Track, ...]:
    groups: dict[tuple[str, frozenset[EventKind], timedelta], list[Feature]] = {}
    for feature in features:
        if feature.entity is None:
            continue
        groups.setdefault((feature.entity, feature.kinds, feature.delay), []).append(feature)
    return tuple(_track(entity, kinds, delay, fs) for (entity, kinds, delay), fs in groups.items())


def event_features(features: tuple[Feature, ...] = FEATURES) -> tuple[Feature, ...]:
    return tuple(f for f in features if f.agg == "event")


def ratio_features(features: tuple[Feature, ...] = FEATURES) -> tuple[Feature, ...]:
    return tuple(f for f in features if f.agg == "ratio")
