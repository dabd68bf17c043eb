"""The currencies Haetae takes payments in (ISO 4217): the one table every part reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Currency:
    alpha: str
    numeric: str  # ISO 8583 field 49
    exponent: int  # minor units: KRW 0, USD 2


CURRENCIES: dict[str, Currency] = {
    c.alpha: c
    for c in (
        Currency("KRW", "410", 0),
        Currency("USD", "840", 2),
        Currency("JPY", "392", 0),
        Currency("EUR", "978", 2),
        Currency("CNY", "156", 2),
        Currency("GBP", "826", 2),
    )
}
