"""When simulated Korean customers act: Seoul local time of day, turned into UTC instants."""

from __future__ import annotations

from datetime import date

import numpy as np

from haetae.simulate.frames import DAY_SECONDS, MICROS, SEOUL_OFFSET, midnight_us

# Relative activity per Seoul hour (0-23): quiet before dawn, peaks at lunch and evening.
HOURLY_ACTIVITY = np.array(
    [
        *(1.5, 0.8, 0.5, 0.3, 0.3, 0.5, 1.2, 2.5, 4.0, 5.0, 5.0, 5.5),
        *(6.5, 5.5, 5.0, 5.0, 5.0, 5.5, 6.0, 6.5, 6.5, 6.0, 4.5, 3.0),
    ]
)
NIGHT_START = 21 * 3600  # voice phishing and takeovers favour 21:00-06:00 Seoul
NIGHT_LENGTH = 9 * 3600


def seoul_instants(start: date, day: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Epoch microseconds of ``seconds`` after Seoul midnight, ``day`` days after ``start``."""
    base = midnight_us(start, SEOUL_OFFSET)
    return base + (day.astype(np.int64) * DAY_SECONDS + seconds.astype(np.int64)) * MICROS


def ordinary_seconds(rng: np.random.Generator, size: int) -> np.ndarray:
    """Seconds after local midnight following the usual daily rhythm."""
    hour = rng.choice(24, size, p=HOURLY_ACTIVITY / HOURLY_ACTIVITY.sum())
    return hour * 3600 + rng.integers(0, 3600, size)


def fraud_seconds(rng: np.random.Generator, size: int, night_share: float) -> np.ndarray:
    """Start times of fraud: ``night_share`` of them between 21:00 and 06:00 the next morning
    (so possibly past this day's midnight), the rest at ordinary hours."""
    night = rng.random(size) < night_share
    at_night = NIGHT_START + rng.integers(0, NIGHT_LENGTH, size)
    return np.where(night, at_night, ordinary_seconds(rng, size))


def seconds_between(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return rng.uniform(low, high, size).astype(np.int64)


def running_offsets(gaps: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sums of ``gaps`` restarting at each group (``counts`` consecutive values):
    the times of a case's successive events after its first."""
    padded = np.concatenate([[0], np.cumsum(gaps)])
    starts = np.cumsum(counts) - counts
    return padded[1:] - np.repeat(padded[starts], counts)
