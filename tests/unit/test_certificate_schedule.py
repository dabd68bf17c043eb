"""Reminder dates in Seoul time: D-n at the reminder hour, the already-due rule, validity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from haetae.certificates.schedule import (
    add_years,
    days_left,
    due_at,
    expiry_for,
    plan,
    renewal_window_open,
)

DAYS = (30, 7, 1, 0)
# 2027-03-10 23:59:59 Seoul: how Korean certificates usually end.
NOT_AFTER = datetime(2027, 3, 10, 14, 59, 59, tzinfo=UTC)


def test_reminders_fall_at_nine_in_the_morning_seoul_time() -> None:
    assert due_at(NOT_AFTER, 7) == datetime(2027, 3, 3, 0, 0, tzinfo=UTC)  # 09:00 KST
    assert due_at(NOT_AFTER, 0) == datetime(2027, 3, 10, 0, 0, tzinfo=UTC)
    assert due_at(NOT_AFTER, 30) == datetime(2027, 2, 8, 0, 0, tzinfo=UTC)


def test_a_same_day_reminder_after_the_expiry_moves_before_it() -> None:
    early = datetime(2027, 3, 9, 22, 0, tzinfo=UTC)  # 07:00 KST on 10 March
    assert due_at(early, 0) == early - timedelta(hours=1)
    assert due_at(early, 1) == datetime(2027, 3, 9, 0, 0, tzinfo=UTC)


def test_of_the_reminders_already_due_only_the_latest_is_kept() -> None:
    six_days_left = datetime(2027, 3, 4, 3, 0, tzinfo=UTC)
    planned = plan(NOT_AFTER, six_days_left, DAYS)
    assert [p.days_before for p in planned] == [7, 1, 0]
    assert planned[0].due_at <= six_days_left < planned[1].due_at
    long_before = datetime(2026, 12, 1, tzinfo=UTC)
    assert [p.days_before for p in plan(NOT_AFTER, long_before, DAYS)] == [30, 7, 1, 0]
    assert plan(NOT_AFTER, NOT_AFTER, DAYS) == []  # expired: nothing


def test_validity_and_the_renewal_window() -> None:
    issued = datetime(2028, 2, 29, 1, 0, tzinfo=UTC)
    assert add_years(issued, 1) == datetime(2029, 2, 28, 1, 0, tzinfo=UTC)
    assert expiry_for("financial", issued) == datetime(2031, 2, 28, 1, 0, tzinfo=UTC)
    assert days_left(datetime(2027, 3, 10, 0, 0, tzinfo=UTC), NOT_AFTER) == 0
    assert renewal_window_open(datetime(2027, 2, 8, 0, 0, tzinfo=UTC), NOT_AFTER)
    assert not renewal_window_open(datetime(2027, 2, 7, 14, 0, tzinfo=UTC), NOT_AFTER)
    assert not renewal_window_open(NOT_AFTER, NOT_AFTER)
