"""When to remind: pure date arithmetic in Asia/Seoul, no I/O.

A reminder "D-n" is due at ``hour`` o'clock Seoul time n calendar days before the expiry
date, so customers hear from the bank in the morning, not at the minute their certificate
was issued. A reminder that would fall at or after the expiry itself (D-0 for a certificate
expiring before ``hour``) is moved to an hour before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal

from haetae.timezones import SEOUL

CertificateKind = Literal["joint", "financial"]
KINDS: tuple[CertificateKind, ...] = ("joint", "financial")
# 공동인증서 is valid for one year, 금융인증서 for three (KFTC / yessign terms).
VALIDITY_YEARS: dict[CertificateKind, int] = {"joint": 1, "financial": 3}
RENEWAL_WINDOW = timedelta(days=30)  # renewal opens a month before expiry


@dataclass(frozen=True, slots=True)
class PlannedReminder:
    days_before: int
    due_at: datetime


def add_years(at: datetime, years: int) -> datetime:
    """The same calendar day ``years`` later (29 February becomes 28 February)."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, day=28)


def expiry_for(kind: CertificateKind, issued_at: datetime) -> datetime:
    return add_years(issued_at, VALIDITY_YEARS[kind])


def seoul_date(at: datetime) -> date:
    return at.astimezone(SEOUL).date()


def days_left(now: datetime, not_after: datetime) -> int:
    """Calendar days from today to the expiry date, both in Seoul (0 on the day itself)."""
    return (seoul_date(not_after) - seoul_date(now)).days


def due_at(not_after: datetime, days_before: int, hour: int = 9) -> datetime:
    when = _due_on(seoul_date(not_after), days_before, hour)
    if when >= not_after:
        when = not_after - timedelta(hours=1)
    return when


@lru_cache(maxsize=16_384)
def _due_on(expiry_day: date, days_before: int, hour: int) -> datetime:
    day = expiry_day - timedelta(days=days_before)
    return datetime.combine(day, time(hour), SEOUL).astimezone(UTC)


def plan(
    not_after: datetime, now: datetime, days: Iterable[int], hour: int = 9
) -> list[PlannedReminder]:
    """The reminders worth keeping for an expiry, seen from ``now``.

    Every reminder still in the future, and of those already due only the latest: a
    certificate registered with six days left gets its D-7 reminder at once, not D-30 too.
    Nothing for an expired certificate.
    """
    return [PlannedReminder(d, when) for when, d in due_times(not_after, now, tuple(days), hour)]


def due_times(
    not_after: datetime, now: datetime, days: tuple[int, ...], hour: int = 9
) -> list[tuple[datetime, int]]:
    """:func:`plan` as ``(due_at, days_before)`` pairs in due order: what planning a
    million certificates calls (bench/notify.py, "plan"), without an object per reminder."""
    if not_after <= now:
        return []
    planned = _day_plan(seoul_date(not_after), days, hour)
    if planned[-1][0] >= not_after:  # the latest would fall at or after the expiry itself
        last = not_after - timedelta(hours=1)
        planned = tuple(sorted((last if when >= not_after else when, d) for when, d in planned))
    first_upcoming = 0
    while first_upcoming < len(planned) and planned[first_upcoming][0] <= now:
        first_upcoming += 1
    return list(planned[max(first_upcoming - 1, 0) :])


@lru_cache(maxsize=16_384)
def _day_plan(
    expiry_day: date, days: tuple[int, ...], hour: int
) -> tuple[tuple[datetime, int], ...]:
    # Cached per expiry date: a million certificates share a thousand or so of them.
    return tuple(sorted((_due_on(expiry_day, d, hour), d) for d in set(days)))


def renewal_window_open(now: datetime, not_after: datetime) -> bool:
    """From the Seoul date a month (30 days) before expiry, the day of the D-30 reminder."""
    return now < not_after and days_left(now, not_after) <= RENEWAL_WINDOW.days
