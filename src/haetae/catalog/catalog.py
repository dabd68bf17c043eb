"""Loads ``errors.toml`` and renders its entries for a locale. (Notices to customers are
Jinja2 templates in ``haetae.notify``.)"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from haetae.currencies import CURRENCIES

Locale = Literal["ko", "en"]
Category = Literal[
    "card_info",
    "network",
    "issuer_policy",
    "maintenance",
    "fraud_suspected",
    "authentication",
    "request",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]

_HERE = Path(__file__).parent


class _Text(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    message: str
    next_step: str


class ErrorEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    category: Category
    status: int
    retryable: bool
    ko: _Text
    en: _Text


class CustomerError(BaseModel):
    """An error as the API shows it."""

    code: str
    category: Category
    message: str
    next_step: str
    retryable: bool
    field: str | None = None


class _Params(dict[str, Any]):
    """Leaves unknown placeholders visible rather than raising in front of a customer."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Catalog:
    def __init__(self, errors: dict[str, ErrorEntry]) -> None:
        self.errors = errors

    @classmethod
    def load(cls, directory: Path = _HERE) -> Catalog:
        with (directory / "errors.toml").open("rb") as f:
            raw_errors = tomllib.load(f)
        return cls({code: ErrorEntry.model_validate(v) for code, v in raw_errors.items()})

    def entry(self, code: str) -> ErrorEntry:
        try:
            return self.errors[code]
        except KeyError:
            raise KeyError(f"error code {code!r} is not in the catalog") from None

    def render_error(
        self,
        code: str,
        locale: Locale,
        *,
        field: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> CustomerError:
        entry = self.entry(code)
        text = entry.ko if locale == "ko" else entry.en
        values = _Params(params or {})
        return CustomerError(
            code=code,
            category=entry.category,
            message=text.message.format_map(values),
            next_step=text.next_step.format_map(values),
            retryable=entry.retryable,
            field=field,
        )


@cache
def catalog() -> Catalog:
    return Catalog.load()


def negotiate_locale(accept_language: str | None) -> Locale:
    """Korean unless the client prefers English (``Accept-Language`` q-values honoured)."""
    if not accept_language:
        return "ko"
    best: tuple[float, Locale] = (-1.0, "ko")
    for part in accept_language.split(","):
        tag, _, q = part.strip().partition(";q=")
        language = tag.strip().lower().split("-")[0]
        if language not in ("ko", "en"):
            continue
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        if weight > best[0]:
            best = (weight, "en" if language == "en" else "ko")
    return best[1]


def format_money(amount_minor: int, currency: str, locale: Locale) -> str:
    known = CURRENCIES.get(currency)
    exponent = known.exponent if known else 2
    value = amount_minor / (10**exponent) if exponent else amount_minor
    number = f"{value:,.{exponent}f}"
    if currency == "KRW":
        return f"{number}원" if locale == "ko" else f"KRW {number}"
    return f"{currency} {number}"
