"""The error catalog is complete, bilingual, and every code the code uses is in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from haetae.catalog import CATEGORIES, catalog, format_money, negotiate_locale
from haetae.payments.connectors.mapping import RESPONSE_CODES, outcome_for

SRC = Path(__file__).resolve().parents[2] / "src" / "haetae"


def test_every_entry_has_both_languages_and_a_next_step() -> None:
    texts = catalog()
    assert len(texts.errors) >= 30
    for code, entry in texts.errors.items():
        assert entry.category in CATEGORIES, code
        for text in (entry.ko, entry.en):
            assert text.message.strip() and text.next_step.strip(), code
        assert re.search("[가-힣]", entry.ko.message), f"{code}: Korean message"
        assert entry.en.message.isascii(), f"{code}: English message"
        placeholders_ko = set(re.findall(r"{(\w+)}", entry.ko.message + entry.ko.next_step))
        placeholders_en = set(re.findall(r"{(\w+)}", entry.en.message + entry.en.next_step))
        assert placeholders_ko == placeholders_en, code


def test_categories_match_how_customers_experience_failure() -> None:
    texts = catalog()
    by_category = {c: [k for k, v in texts.errors.items() if v.category == c] for c in CATEGORIES}
    assert all(by_category[c] for c in CATEGORIES)
    assert all(texts.errors[c].retryable for c in by_category["network"])
    assert all(texts.errors[c].retryable for c in by_category["maintenance"])
    assert not any(texts.errors[c].retryable for c in by_category["card_info"])


def test_every_code_used_in_source_is_in_the_catalog() -> None:
    used: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r'HaetaeError\(\s*"(\w+)"', text))
        used |= set(re.findall(r'\bfail\([^)]*?"(?:failed|declined)",\s*"(\w+)"', text, re.S))
    # The scan must see the codes the payment flow sets directly, or it proves nothing.
    assert {"issuer_timeout", "challenge_expired", "authentication_failed"} <= used
    used |= {o.error_code for o in RESPONSE_CODES.values() if o.error_code}
    assert used, "the scan found no codes"
    missing = used - set(catalog().errors)
    assert not missing, missing


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("00", "approved"),
        ("05", "card_declined"),
        ("14", "card_number_unknown"),
        ("41", "card_declined"),
        ("43", "card_declined"),
        ("51", "insufficient_funds"),
        ("54", "card_expired_at_issuer"),
        ("55", "card_password_incorrect"),
        ("57", "transaction_not_permitted"),
        ("61", "limit_exceeded"),
        ("65", "frequency_limit_exceeded"),
        ("91", "issuer_unavailable"),
        ("96", "issuer_system_error"),
        ("N7", "cvc_mismatch"),
        ("Z9", "card_declined"),
    ],
)
def test_iso_response_codes_map_to_catalog_codes(code: str, expected: str) -> None:
    outcome = outcome_for(code)
    assert (outcome.error_code or outcome.status) == expected


def test_lost_and_stolen_are_generic_to_the_customer() -> None:
    assert outcome_for("41").flags == ("lost_card",)
    assert outcome_for("43").flags == ("stolen_card",)
    assert outcome_for("N7", "B").error_code == "holder_verification_failed"
    assert outcome_for("Z9").flags == ("unmapped_response_Z9",)


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "ko"),
        ("", "ko"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("ko-KR,ko;q=0.9,en;q=0.8", "ko"),
        ("fr-FR,en;q=0.5", "en"),
        ("de", "ko"),
        ("en;q=0.2,ko;q=0.9", "ko"),
    ],
)
def test_locale_negotiation(header: str | None, locale: str) -> None:
    assert negotiate_locale(header) == locale


def test_money_formatting() -> None:
    assert format_money(15000, "KRW", "ko") == "15,000원"
    assert format_money(15000, "KRW", "en") == "KRW 15,000"
    assert format_money(1999, "USD", "en") == "USD 19.99"


def test_a_partial_approval_is_declined_and_released() -> None:
    outcome = outcome_for("10")
    assert outcome.status == "declined" and outcome.reverse
    assert outcome.flags == ("partial_approval",)
    assert not outcome_for("51").reverse
