"""Issuers' scheduled maintenance windows (daily, Asia/Seoul), possibly across midnight."""

from __future__ import annotations

from datetime import datetime, timedelta

from haetae.config import MaintenanceWindow
from haetae.timezones import SEOUL


def maintenance_ends_at(windows: list[MaintenanceWindow], now: datetime) -> datetime | None:
    """When the window ``now`` falls in ends (Asia/Seoul), or None outside every window."""
    local = now.astimezone(SEOUL)
    for window in windows:
        for day_offset in (0, -1):  # a window that began yesterday may still be running
            day = (local + timedelta(days=day_offset)).date()
            start = datetime.combine(day, window.start, SEOUL)
            end = datetime.combine(day, window.end, SEOUL)
            if end <= start:
                end += timedelta(days=1)
            if start <= local < end:
                return end
    return None
