"""Small builders shared by the simulators: event frames, identifiers, IPs, account numbers.

Everything takes arrays (one value per event) so the simulators stay vectorised; times are
integer microseconds since the Unix epoch (UTC) until :func:`event_frame` casts them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from haetae.risk.events import EventKind, conform, empty_events

MICROS = 1_000_000
DAY_SECONDS = 86_400
SEOUL_OFFSET = timedelta(hours=9)  # KST has no daylight saving time

PhaseHook = Callable[[str], None]
"""Called with a short description each time a simulator finishes one phase of its work."""

Column = np.ndarray | pl.Series | str | int | bool | None


def no_phase(_: str) -> None:
    return None


def midnight_us(day: date, offset: timedelta = timedelta(0)) -> int:
    """Microseconds since the epoch at local midnight of ``day`` in a zone ``offset`` from UTC."""
    local = datetime(day.year, day.month, day.day, tzinfo=UTC) - offset
    return int(local.timestamp()) * MICROS


def event_frame(kind: EventKind, size: int, **columns: Column) -> pl.DataFrame:
    """``size`` events of one kind, conformed to the event schema; scalars are repeated and
    columns not given are null. ``occurred_at`` is given in epoch microseconds."""
    series = [pl.repeat(kind, size, eager=True, dtype=pl.String).alias("kind")]
    for name, value in columns.items():
        if isinstance(value, pl.Series):
            series.append(value.alias(name))
        elif isinstance(value, np.ndarray):
            series.append(pl.Series(name, value))
        else:
            series.append(pl.repeat(value, size, eager=True).alias(name))
    return conform(pl.DataFrame(series))


def prefixed(prefix: str, index: np.ndarray, width: int) -> pl.Series:
    """Readable identifiers such as ``card-000123`` for integer indices."""
    digits = pl.Series(index.astype(np.int64)).cast(pl.String).str.zfill(width)
    return pl.select(pl.lit(prefix) + digits).to_series()


def width_for(count: int, minimum: int = 6) -> int:
    return max(minimum, len(str(max(count - 1, 0))))


def opaque_ids(rng: np.random.Generator, size: int, prefix: str) -> pl.Series:
    """Random 64-bit hexadecimal identifiers (device ids): nothing in them tells genuine from
    fraudulent, and a collision is vanishingly unlikely."""
    values = rng.integers(0, 2**63 - 1, size, dtype=np.int64)
    return pl.Series([f"{prefix}{value:016x}" for value in values.tolist()], dtype=pl.String)


def ip_addresses(rng: np.random.Generator, size: int, first_octets: Sequence[int]) -> pl.Series:
    """IPv4 addresses whose first octet is drawn from ``first_octets``."""
    octets = [
        rng.choice(np.asarray(first_octets), size),
        rng.integers(0, 256, size),
        rng.integers(0, 256, size),
        rng.integers(1, 255, size),
    ]
    parts = [pl.Series(values).cast(pl.String) for values in octets]
    return pl.select(pl.concat_str(parts, separator=".")).to_series()


def account_numbers(rng: np.random.Generator, size: int) -> pl.Series:
    """Account numbers in the ``123-456789-01234`` shape (digits and dashes)."""
    groups = [(3, rng.integers(0, 10**3, size)), (6, rng.integers(0, 10**6, size))]
    groups.append((5, rng.integers(0, 10**5, size)))
    parts = [pl.Series(values).cast(pl.String).str.zfill(width) for width, values in groups]
    return pl.select(pl.concat_str(parts, separator="-")).to_series()


def round_won(amount: np.ndarray, unit: int) -> np.ndarray:
    """Whole won rounded to ``unit`` (transfers are usually round sums), never below it."""
    return np.maximum(np.round(amount / unit), 1).astype(np.int64) * unit


def concat_events(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    non_empty = [frame for frame in frames if frame.height]
    if not non_empty:
        return empty_events()
    return pl.concat(non_empty, how="vertical")
