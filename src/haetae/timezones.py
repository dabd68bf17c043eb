"""The bank's clock: Korea Standard Time, for everything a customer or an analyst reads
(quiet hours, maintenance windows, expiry dates, case deadlines, report periods)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")
