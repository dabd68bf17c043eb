"""The period a report covers: a year (``2026``), a quarter (``2026-Q1``) or a month
(``2026-03``), on the Seoul calendar, cut into the buckets its trend charts show (months, or
days for a one-month report)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from haetae.errors import HaetaeError
from haetae.timezones import SEOUL

PeriodKind = Literal["year", "quarter", "month"]

_PATTERN = re.compile(r"^(?P<year>\d{4})(?:-(?:[Qq](?P<quarter>[1-4])|(?P<month>\d{2})))?$")
FIRST_YEAR, LAST_YEAR = 2000, 2100


@dataclass(frozen=True, slots=True)
class Bucket:
    """One step of a trend: ``key`` is ``2026-03`` (a month) or ``2026-03-15`` (a day)."""

    key: str
    start: datetime  # Seoul, inclusive
    end: datetime  # Seoul, exclusive
    month: int
    day: int | None = None


@dataclass(frozen=True, slots=True)
class Period:
    text: str  # normalised: 2026, 2026-Q1, 2026-03
    kind: PeriodKind
    start: datetime  # Seoul midnight, inclusive
    end: datetime  # Seoul midnight, exclusive
    buckets: tuple[Bucket, ...]

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    @property
    def year(self) -> int:
        return self.start.year

    def is_complete(self, now: datetime) -> bool:
        return now >= self.end

    def bucket_of(self, moment: datetime) -> int | None:
        """The index of the bucket ``moment`` falls in, or None outside the period."""
        for i, bucket in enumerate(self.buckets):
            if bucket.start <= moment < bucket.end:
                return i
        return None


def _month_start(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=SEOUL)


def _months(year: int, first: int, count: int) -> tuple[Bucket, ...]:
    return tuple(
        Bucket(
            key=f"{_month_start(year, m):%Y-%m}",
            start=_month_start(year, m),
            end=_month_start(year, m + 1),
            month=(m - 1) % 12 + 1,
        )
        for m in range(first, first + count)
    )


def _days(year: int, month: int) -> tuple[Bucket, ...]:
    start, end = _month_start(year, month), _month_start(year, month + 1)
    days = []
    day = start
    while day < end:
        following = day + timedelta(days=1)  # Seoul keeps no daylight saving time
        days.append(
            Bucket(key=f"{day:%Y-%m-%d}", start=day, end=following, month=month, day=day.day)
        )
        day = following
    return tuple(days)


def parse_period(text: str) -> Period:
    """``2026`` → the year, ``2026-Q1`` → a quarter, ``2026-03`` → a month (Seoul time).

    Raises ``HaetaeError("report_period_invalid", field="period")`` for anything else."""
    match = _PATTERN.match(text.strip())
    year = int(match["year"]) if match else 0
    if match is None or not FIRST_YEAR <= year <= LAST_YEAR:
        raise HaetaeError("report_period_invalid", field="period", params={"period": text})
    if match["quarter"]:
        quarter = int(match["quarter"])
        first = (quarter - 1) * 3 + 1
        return Period(
            text=f"{year}-Q{quarter}",
            kind="quarter",
            start=_month_start(year, first),
            end=_month_start(year, first + 3),
            buckets=_months(year, first, 3),
        )
    if match["month"]:
        month = int(match["month"])
        if not 1 <= month <= 12:
            raise HaetaeError("report_period_invalid", field="period", params={"period": text})
        return Period(
            text=f"{year}-{month:02d}",
            kind="month",
            start=_month_start(year, month),
            end=_month_start(year, month + 1),
            buckets=_days(year, month),
        )
    return Period(
        text=str(year),
        kind="year",
        start=_month_start(year, 1),
        end=_month_start(year, 13),
        buckets=_months(year, 1, 12),
    )
