"""Reasons for a score: the features that added the most risk, in Korean and English.

The contributions are LightGBM's own (``pred_contrib``: per feature, the log-odds it added to
this event's margin, exact for trees), so a reason is what the model actually used, not a
separate guess. The texts come from one catalog, ``reasons.toml``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

DEFAULT_TOP = 3


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    feature: str
    contribution: float  # log-odds this feature added to the margin
    ko: str
    en: str


@dataclass(frozen=True, slots=True)
class _Entry:
    code: str
    name_ko: str
    name_en: str
    ko: str | None
    en: str | None
    ratio_to: tuple[str, ...]
    minimum: float | None


class ReasonCatalog:
    """The reason texts, compiled for one model's feature order."""

    def __init__(self, catalog: dict[str, Any], feature_names: Sequence[str]) -> None:
        generic = catalog.get("generic", {})
        self._generic_ko: str = generic.get("ko", "{name}: {value}")
        self._generic_en: str = generic.get("en", "{name}: {value}")
        entries = catalog.get("features", {})
        self._names = tuple(feature_names)
        index = {name: i for i, name in enumerate(self._names)}
        self._entries = [_entry(name, entries.get(name, {})) for name in self._names]
        # The first of the entry's ratio_to names that this model has.
        self._ratio_index = [
            next((index[name] for name in entry.ratio_to if name in index), None)
            for entry in self._entries
        ]

    @classmethod
    def load(cls, feature_names: Sequence[str], path: Path | None = None) -> ReasonCatalog:
        if path is None:
            text = resources.files(__package__).joinpath("reasons.toml").read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        return cls(tomllib.loads(text), feature_names)

    def explain(
        self, contributions: Sequence[float], values: Sequence[float], top: int = DEFAULT_TOP
    ) -> list[Reason]:
        """The ``top`` features with the largest positive contributions, largest first.

        ``contributions`` and ``values`` are in model order (a trailing bias term in
        ``contributions`` is ignored).
        """
        ranked = sorted(
            (i for i in range(len(self._names)) if contributions[i] > 0),
            key=lambda i: contributions[i],
            reverse=True,
        )
        return [self.reason(i, float(contributions[i]), values) for i in ranked[:top]]

    def top_codes(self, contributions: np.ndarray, top: int = DEFAULT_TOP) -> pl.Series:
        """Per row of ``contributions`` (features only, model order), the codes of the
        reasons :meth:`explain` would give, without their texts: a list column, built
        column-wise (a Python list per row cost more than the model's contributions)."""
        rows = contributions.shape[0]
        top = min(top, contributions.shape[1])
        # a stable sort of the negated contributions: ties keep model order, as sorted() does
        order = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
        positive = np.take_along_axis(contributions, order, axis=1) > 0
        codes = pl.Series([entry.code for entry in self._entries], dtype=pl.String)
        ranked = pl.DataFrame(
            {
                f"{k}": codes.gather(order[:, k]).zip_with(
                    pl.Series(positive[:, k]), pl.Series([None] * rows, dtype=pl.String)
                )
                for k in range(top)
            }
        )
        return ranked.select(pl.concat_list(pl.all()).list.drop_nulls()).to_series()

    def reason(self, i: int, contribution: float, values: Sequence[float]) -> Reason:
        entry = self._entries[i]
        value = float(values[i])
        fields = {"value": _number(value), "percent": _number(value * 100.0)}
        ratio_at = self._ratio_index[i]
        if ratio_at is not None:
            base = float(values[ratio_at])
            if base > 0 and not math.isnan(value):
                fields["ratio"] = _number(value / base, 1)
        usable = not math.isnan(value) and (entry.minimum is None or value >= entry.minimum)
        ko = _fill(entry.ko, fields) if usable else None
        en = _fill(entry.en, fields) if usable else None
        if ko is None or en is None:
            ko = _fill(self._generic_ko, {**fields, "name": entry.name_ko}) or entry.name_ko
            en = _fill(self._generic_en, {**fields, "name": entry.name_en}) or entry.name_en
        return Reason(entry.code, self._names[i], contribution, ko, en)


def _entry(name: str, raw: dict[str, Any]) -> _Entry:
    minimum = raw.get("min")
    ratio_to = raw.get("ratio_to", ())
    return _Entry(
        code=str(raw.get("code", name)),
        name_ko=str(raw.get("name_ko", name)),
        name_en=str(raw.get("name_en", name)),
        ko=raw.get("ko"),
        en=raw.get("en"),
        ratio_to=(ratio_to,) if isinstance(ratio_to, str) else tuple(ratio_to),
        minimum=float(minimum) if minimum is not None else None,
    )


def _fill(template: str | None, fields: dict[str, str]) -> str | None:
    if template is None:
        return None
    try:
        return template.format_map(fields)
    except (KeyError, ValueError, IndexError):
        return None


def _number(value: float, decimals: int = 2) -> str:
    """1,234 for whole numbers, 12.35 (or 3.2 with ``decimals=1``) otherwise."""
    if not math.isfinite(value):
        return "—" if math.isnan(value) else str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.{decimals}f}".rstrip("0").rstrip(".")
