"""In-process state of the "hours since the entity's last X" features of one entity.

One small dict per key (feature -> time of the last such event), so all of an entity's
recency features cost one lookup. "Last" means last in stream order, as offline.
"""

from __future__ import annotations

from collections.abc import Hashable

from haetae.risk.events import EventKind
from haetae.risk.features.definitions import Feature
from haetae.risk.features.rowops import HOUR_US, Value


class Recency:
    def __init__(self, features: list[Feature]) -> None:
        self.names = tuple(feature.name for feature in features)
        self.kinds: frozenset[EventKind] = frozenset().union(*(f.kinds for f in features))
        # event kind -> the features it refreshes
        self.refreshed: dict[str, tuple[str, ...]] = {
            kind: tuple(f.name for f in features if kind in f.kinds) for kind in self.kinds
        }
        self.nulls: dict[str, Value] = dict.fromkeys(self.names)
        self.last: dict[Hashable, dict[str, int]] = {}

    def read(self, key: Hashable, now: int, out: dict[str, Value]) -> None:
        seen = self.last.get(key)
        if seen is None:
            out.update(self.nulls)
            return
        for name in self.names:
            at = seen.get(name)
            out[name] = None if at is None else (now - at) / HOUR_US

    def add(self, key: Hashable, kind: str, now: int) -> None:
        names = self.refreshed.get(kind)
        if names:
            seen = self.last.setdefault(key, {})
            for name in names:
                seen[name] = now
