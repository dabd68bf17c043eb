"""What a payment request must pass before anything is recorded or sent: the merchant's
amount limits, and the typed card."""

from __future__ import annotations

from datetime import datetime

from haetae.catalog import Locale, format_money
from haetae.currencies import CURRENCIES
from haetae.errors import HaetaeError
from haetae.merchants.models import Merchant
from haetae.payments.connectors.base import CardDetails
from haetae.payments.draft import PaymentState
from haetae.payments.schemas import PaymentCreate
from haetae.payments.validation import (
    check_birth_or_business_no,
    check_cvc,
    check_expiry,
    check_number,
    check_password_2digits,
)
from haetae.security.card_crypto import CardSecrets, mask_pan

# The smallest card payment per currency (KRW 100 is the Korean norm); others: one unit.
MINIMUM_AMOUNT = {"KRW": 100}


def check_amount(merchant: Merchant, body: PaymentCreate, locale: Locale) -> None:
    """Request-level limits (422): the currency is accepted, the amount within bounds."""
    limit = merchant.amount_limits.get(body.currency)
    if limit is None or body.currency not in CURRENCIES:
        raise HaetaeError(
            "currency_not_accepted", field="currency", params={"currency": body.currency}
        )
    minimum = MINIMUM_AMOUNT.get(body.currency, 1)
    if body.amount < minimum:
        raise HaetaeError(
            "amount_invalid",
            field="amount",
            params={"minimum": format_money(minimum, body.currency, locale)},
        )
    if body.amount > limit:
        raise HaetaeError(
            "amount_over_limit",
            field="amount",
            params={"limit": format_money(limit, body.currency, locale)},
        )


def read_card(
    payment: PaymentState, body: PaymentCreate, now: datetime, card_secrets: CardSecrets
) -> CardDetails:
    """Validate the typed card; fills brand, mask and fingerprint as soon as the number
    is readable, so even a failed attempt is attributed to its card."""
    typed = body.card
    checked = check_number(typed.number)
    payment.card_brand = checked.brand
    payment.card_masked = mask_pan(checked.pan)
    payment.card_fingerprint = card_secrets.fingerprint(checked.pan)
    exp_year = check_expiry(typed.exp_month, typed.exp_year, now)
    cvc = check_cvc(typed.cvc, checked.brand) if typed.cvc is not None else None
    birth = (
        check_birth_or_business_no(typed.birth_or_business_no)
        if typed.birth_or_business_no is not None
        else None
    )
    password = (
        check_password_2digits(typed.password_2digits)
        if typed.password_2digits is not None
        else None
    )
    if checked.brand == "domestic" and birth is None:
        raise HaetaeError("card_verification_required", field="card.birth_or_business_no")
    if cvc is None and birth is None:
        raise HaetaeError("card_verification_required", field="card.cvc")
    return CardDetails(
        pan=checked.pan,
        exp_month=typed.exp_month,
        exp_year=exp_year,
        cvc=cvc,
        birth_or_business_no=birth,
        password_2digits=password,
    )
