"""Card checks, with property tests over generated card numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import luhn

from haetae.config import MaintenanceWindow
from haetae.errors import HaetaeError
from haetae.logging import scrub_pans
from haetae.payments.maintenance import maintenance_ends_at
from haetae.payments.validation import (
    check_birth_or_business_no,
    check_expiry,
    check_number,
    detect_brand,
)

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def _with_check_digit(body: str) -> str:
    return body + luhn.calc_check_digit(body)


@given(st.text(alphabet="0123456789", min_size=15, max_size=15), st.sampled_from([" ", "-", ""]))
def test_valid_visa_numbers_pass_with_any_separator(digits: str, sep: str) -> None:
    pan = _with_check_digit("4" + digits[:14])
    typed = sep.join(pan[i : i + 4] for i in range(0, 16, 4))
    checked = check_number(typed)
    assert checked.pan == pan and checked.brand == "visa"


@given(
    st.text(alphabet="0123456789", min_size=14, max_size=14),
    st.characters(blacklist_categories=("Nd",), blacklist_characters=" -"),
)
def test_any_other_character_is_rejected(digits: str, junk: str) -> None:
    pan = _with_check_digit("4" + digits)
    with pytest.raises(HaetaeError) as error:
        check_number(pan[:8] + junk + pan[8:])
    assert error.value.code == "card_number_invalid" and error.value.field == "card.number"


@given(st.text(alphabet="0123456789", min_size=15, max_size=15))
def test_a_wrong_check_digit_is_rejected(digits: str) -> None:
    pan = _with_check_digit("4" + digits)
    wrong = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    with pytest.raises(HaetaeError):
        check_number(wrong)


@pytest.mark.parametrize(
    ("prefix", "brand"),
    [
        ("4", "visa"),
        ("51", "mastercard"),
        ("55", "mastercard"),
        ("2221", "mastercard"),
        ("2720", "mastercard"),
        ("34", "amex"),
        ("37", "amex"),
        ("3528", "jcb"),
        ("3589", "jcb"),
        ("62", "unionpay"),
        ("9", "domestic"),
        ("2220", None),
        ("2721", None),
        ("56", None),
        ("3590", None),
    ],
)
def test_brand_from_bin(prefix: str, brand: str | None) -> None:
    assert detect_brand(prefix.ljust(16, "0")) == brand


def test_wrong_length_for_brand() -> None:
    with pytest.raises(HaetaeError):
        check_number(_with_check_digit("37" + "0" * 13))  # Amex is 15 digits, this is 16


@pytest.mark.parametrize(
    ("month", "year", "ok"),
    [(11, 2026, True), (11, 26, True), (10, 2026, False), (12, 2026, True), (0, 2030, False)],
)
def test_expiry_runs_to_the_end_of_the_month_in_seoul(month: int, year: int, ok: bool) -> None:
    if ok:
        assert check_expiry(month, year, NOW) == 2026
    else:
        with pytest.raises(HaetaeError):
            check_expiry(month, year, NOW)


def test_expiry_is_judged_in_seoul_not_utc() -> None:
    # 2026-11-30 16:00 UTC is already 1 December in Seoul: a card valid through 11/26 expired.
    late = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    with pytest.raises(HaetaeError):
        check_expiry(11, 2026, late)
    assert check_expiry(11, 2026, datetime(2026, 11, 30, 14, 0, tzinfo=UTC)) == 2026


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("900101", True),
        ("000229", True),
        ("010229", False),
        ("901301", False),
        ("1234567890", True),
        ("123-45-67890", True),
        ("0991234567", False),
        ("12345", False),
    ],
)
def test_birth_date_or_business_number(value: str, ok: bool) -> None:
    if ok:
        assert check_birth_or_business_no(value).isdigit()
    else:
        with pytest.raises(HaetaeError):
            check_birth_or_business_no(value)


@pytest.mark.parametrize(
    ("utc_time", "ends"),
    [
        ((14, 29), None),  # 23:29 Seoul
        ((14, 30), "00:30"),  # 23:30 Seoul
        ((15, 0), "00:30"),  # 00:00 Seoul, the next day
        ((15, 29), "00:30"),
        ((15, 30), None),  # 00:30 Seoul: over
    ],
)
def test_maintenance_window_across_midnight(utc_time: tuple[int, int], ends: str | None) -> None:
    windows = [MaintenanceWindow.parse("23:30-00:30")]
    now = datetime(2026, 11, 22, *utc_time, tzinfo=UTC)
    end = maintenance_ends_at(windows, now)
    assert (end.strftime("%H:%M") if end else None) == ends


def test_log_scrubber_masks_card_numbers_but_not_other_numbers() -> None:
    text = "card 4242 4242 4242 4242 and 4242-4242-4242-4242, order 12345678901234"
    scrubbed = scrub_pans(text)
    assert "4242 4242 4242 4242" not in scrubbed and "4242-4242-4242-4242" not in scrubbed
    assert "424242******4242" in scrubbed
    assert "12345678901234" in scrubbed  # not Luhn-valid: an order number stays readable
