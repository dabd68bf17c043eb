"""Card checks that need no issuer: number, brand, expiry, CVC and Korean key-in data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from stdnum import luhn
from stdnum.kr import brn

from haetae.errors import HaetaeError
from haetae.timezones import SEOUL

Brand = Literal["visa", "mastercard", "amex", "jcb", "unionpay", "domestic"]

_SEPARATORS = re.compile(r"[ \-]")
_DIGITS = re.compile(r"[0-9]+")

# Valid lengths per brand (ISO/IEC 7812 and the networks' published ranges).
_LENGTHS: dict[Brand, tuple[int, ...]] = {
    "visa": (13, 16, 19),
    "mastercard": (16,),
    "amex": (15,),
    "jcb": (16, 17, 18, 19),
    "unionpay": (16, 17, 18, 19),
    "domestic": (16,),
}


def detect_brand(pan: str) -> Brand | None:
    """Brand from the leading digits (the BIN)."""
    if pan.startswith("4"):
        return "visa"
    two, four = int(pan[:2]), int(pan[:4])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if 3528 <= four <= 3589:
        return "jcb"
    if two == 62:
        return "unionpay"
    if pan.startswith("9"):
        return "domestic"
    return None


@dataclass(frozen=True, slots=True)
class CheckedCard:
    pan: str
    brand: Brand


def check_number(raw: str) -> CheckedCard:
    """Spaces and dashes are allowed between digits; anything else is a typing error."""
    pan = _SEPARATORS.sub("", raw)
    if not _DIGITS.fullmatch(pan) or not 12 <= len(pan) <= 19:
        raise HaetaeError("card_number_invalid", field="card.number")
    brand = detect_brand(pan)
    if brand is None:
        raise HaetaeError("card_brand_unsupported", field="card.number")
    if len(pan) not in _LENGTHS[brand] or not luhn.is_valid(pan):
        raise HaetaeError("card_number_invalid", field="card.number")
    return CheckedCard(pan=pan, brand=brand)


def check_expiry(exp_month: int, exp_year: int, now: datetime) -> int:
    """Returns the four-digit year. A card is valid through the last day of its month,
    judged in Asia/Seoul, where the customer is."""
    if not 1 <= exp_month <= 12:
        raise HaetaeError("card_expiry_invalid", field="card.exp_month")
    if 0 <= exp_year <= 99:
        exp_year += 2000
    today = now.astimezone(SEOUL).date()
    if not 2000 <= exp_year <= today.year + 30:
        raise HaetaeError("card_expiry_invalid", field="card.exp_year")
    if (exp_year, exp_month) < (today.year, today.month):
        raise HaetaeError("card_expired", field="card.exp_year")
    return exp_year


def check_cvc(cvc: str, brand: Brand) -> str:
    expected = 4 if brand == "amex" else 3
    if not (cvc.isascii() and cvc.isdigit() and len(cvc) == expected):
        raise HaetaeError("cvc_invalid", field="card.cvc")
    return cvc


def _is_birth_date(value: str) -> bool:
    """YYMMDD in either century (a key-in customer may be born in 19xx or 20xx)."""
    month, day = int(value[2:4]), int(value[4:6])
    for century in (1900, 2000):
        try:
            date(century + int(value[:2]), month, day)
        except ValueError:
            continue
        return True
    return False


def check_birth_or_business_no(value: str) -> str:
    digits = value.replace("-", "")
    ok = (
        digits.isascii()
        and digits.isdigit()
        and (
            (len(digits) == 6 and _is_birth_date(digits))
            or (len(digits) == 10 and brn.is_valid(digits))
        )
    )
    if not ok:
        raise HaetaeError("birth_or_business_no_invalid", field="card.birth_or_business_no")
    return digits


def check_password_2digits(value: str) -> str:
    if not (value.isascii() and value.isdigit() and len(value) == 2):
        raise HaetaeError("card_password_invalid", field="card.password_2digits")
    return value
