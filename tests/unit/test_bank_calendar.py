"""The days Korean banks are closed, for the cases' business-day deadlines."""

from __future__ import annotations

from datetime import date

from haetae.cases.calendar import BankHolidays
from haetae.cases.process import add_business_days, is_business_day


def test_public_holidays_including_lunar_and_substitute_days() -> None:
    closed = BankHolidays()
    for day in (
        date(2026, 2, 17),  # Seollal (lunar New Year)
        date(2026, 3, 2),  # substitute for Independence Movement Day (a Sunday)
        date(2026, 9, 25),  # Chuseok
        date(2027, 2, 9),  # substitute for Seollal
        date(2030, 9, 12),  # Chuseok, years ahead: computed, not listed by hand
    ):
        assert day in closed, day
        assert not is_business_day(day, closed)
    assert date(2026, 11, 20) not in closed  # an ordinary Friday
    assert closed.name(date(2026, 9, 25)) == "Chuseok"
    assert closed.name(date(2026, 11, 20)) is None


def test_a_banks_own_closures_are_added() -> None:
    closed = BankHolidays([date(2026, 12, 31)])
    assert date(2026, 12, 31) in closed and closed.name(date(2026, 12, 31)) == "bank closure"
    assert date(2026, 12, 31) not in BankHolidays()
    # From Christmas Eve (Thursday): 28, 29 and 30 December without the closure; with it
    # the 31st is skipped as well.
    assert add_business_days(date(2026, 12, 24), 3, BankHolidays()) == date(2026, 12, 30)
    assert add_business_days(date(2026, 12, 24), 4, closed) == date(2027, 1, 4)
