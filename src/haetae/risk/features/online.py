"""Online features: the store protocol and the in-process store (the default).

Per track and entity key the in-process store keeps sliding windows with running sums
(:mod:`.windows`), so each event costs O(1) amortised and no Polars runs per event.

Scoring calls :meth:`features` before the decision and :meth:`update` once the outcome is
known (a payment's ``approved`` comes from the issuer after scoring); :meth:`process` does
both for a replay. Events are expected in time order; a late event is still counted as
history of the ones after it, and leaves its windows once older events ahead of it have.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from haetae.risk.features.definitions import FEATURES, Feature
from haetae.risk.features.plan import Track, build_tracks, event_features, ratio_features
from haetae.risk.features.recency import Recency
from haetae.risk.features.rowops import (
    Clock,
    Row,
    Value,
    event_values,
    key_function,
    micros,
    ratio_values,
)
from haetae.risk.features.windows import WindowTrack


class FeatureStore(Protocol):
    def features(self, row: Row) -> dict[str, Value]:
        """The features of an event from the history before it; changes no history."""
        ...

    def update(self, row: Row) -> None:
        """Add the event to the history (with its outcome, e.g. ``approved``)."""
        ...

    def process(self, row: Row) -> dict[str, Value]:
        """``features`` then ``update``: one event of a replay."""
        ...

    def record_label(self, row: Row, label: int) -> None:
        """A fraud label (1) or genuine (0) learnt after the event; ``row`` is the event."""
        ...


class AsyncFeatureStore(Protocol):
    """:class:`FeatureStore` for a store across the network (Redis): the event loop serves
    other requests while a call waits for its round trip."""

    async def features(self, row: Row) -> dict[str, Value]: ...

    async def update(self, row: Row) -> None: ...

    async def process(self, row: Row) -> dict[str, Value]: ...

    async def record_label(self, row: Row, label: int) -> None: ...


class _Entity:
    """The state of one entity: its key is read from an event once for all its tracks."""

    def __init__(self, columns: tuple[str, ...], tracks: list[Track]) -> None:
        self.column = columns[0] if len(columns) == 1 else None  # the common case, inlined
        self.key = key_function(columns)
        recent = [r.feature for t in tracks if not t.windows for r in t.readers]
        self.recency = Recency(recent) if recent else None
        self.tracks = [WindowTrack(track) for track in tracks if track.windows]
        self.nulls: dict[str, Value] = dict(self.recency.nulls) if self.recency else {}
        for track in self.tracks:
            self.nulls.update(track.nulls)


class InProcessFeatureStore:
    """The default feature store: all state in this process's memory (see the module doc).

    ``features`` may be a subset of the catalogue: a store computes only what it is given
    (the engine can leave out what its rules and model do not use). Memory: each key keeps
    the events of its longest window (30 days; 37 for the delayed terminal windows), and
    all-history features keep one small record per customer, customer-device and
    customer-payee pair. :meth:`sweep` drops idle keys.
    """

    def __init__(self, features: tuple[Feature, ...] = FEATURES) -> None:
        grouped: dict[tuple[str, ...], list[Track]] = {}
        for track in build_tracks(features):
            grouped.setdefault(track.keys, []).append(track)
        self._entities = [_Entity(columns, tracks) for columns, tracks in grouped.items()]
        self._tracks = [track for entity in self._entities for track in entity.tracks]
        self._labelled = [track for track in self._tracks if track.labelled]
        self._event = event_features(features)
        self._ratios = ratio_features(features)
        self._micros = Clock()

    def features(self, row: Row) -> dict[str, Value]:
        now = self._micros(row)
        out: dict[str, Value] = {}
        event_values(self._event, row, now, out)
        # reading a track, written out here: the inner loop runs ~15 times per event
        for entity in self._entities:
            key = row.get(entity.column) if entity.column else entity.key(row)
            if key is None:
                out.update(entity.nulls)
                continue
            for track in entity.tracks:
                state = track.states.get(key)
                if state is None:
                    out.update(track.empty)
                    continue
                if now >= state.due:
                    track.advance(state, now)
                cache = state.cache
                if cache is None:
                    cache = track.refresh(state, now)
                out.update(cache)
                if track.clocked:
                    track.read_clocked(state, now, out)
            if entity.recency:
                entity.recency.read(key, now, out)
        ratio_values(self._ratios, row, out)
        return out

    def update(self, row: Row) -> None:
        now = self._micros(row)
        kind = row["kind"]
        for entity in self._entities:
            key = row.get(entity.column) if entity.column else entity.key(row)
            if key is None:
                continue
            for track in entity.tracks:
                if kind in track.kinds:
                    track.add(key, row, now)
            if entity.recency:
                entity.recency.add(key, kind, now)

    def process(self, row: Row) -> dict[str, Value]:
        values = self.features(row)
        self.update(row)
        return values

    def record_label(self, row: Row, label: int) -> None:
        labelled = {**row, "label": label}
        for track in self._labelled:
            if row.get("kind") in track.kinds:
                track.relabel(labelled)

    def sweep(self, now: datetime) -> int:
        """Expire every key up to ``now`` and forget the keys left with nothing in any
        window; returns how many were forgotten. A key is otherwise expired only when it is
        seen again, so a long-running process calls this now and then (hourly, say)."""
        at = micros(now)
        return sum(track.forget_idle(at) for track in self._tracks)
