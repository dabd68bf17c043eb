"""The days Korean banks are closed, for business-day deadlines (the written application's
3 business days, the FSS notice's 2).

Public holidays come from the ``holidays`` package (lunar New Year and Chuseok, substitute
holidays, election days, and Labour Day, a paid holiday for everyone from 2026): lunar dates
and substitute rules are what no hand-kept list gets right for long. A bank adds its own
closures with ``HAETAE_BANK_CLOSED_DAYS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import holidays


class BankHolidays:
    """Korean public holidays (every year, computed when first asked) and extra closures."""

    def __init__(self, extra: Iterable[date] = ()) -> None:
        self._public = holidays.country_holidays("KR")
        self._extra = frozenset(extra)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and (day in self._extra or day in self._public)

    def name(self, day: date) -> str | None:
        """The holiday's name (English), or None on a day banks are open (weekends aside)."""
        if day in self._extra:
            return "bank closure"
        return self._public.get(day)
