"""Payment rows → API responses, with text from the catalog in the caller's language."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from haetae.catalog import Catalog, Locale
from haetae.payments.draft import PaymentState
from haetae.payments.models import PaymentChallenge
from haetae.payments.schemas import CardOut, ChallengeOut, PaymentOut, PaymentStatus
from haetae.timezones import SEOUL

PUBLIC_STATUS: dict[str, PaymentStatus] = {
    "pending": "processing",
    "authorizing": "processing",
    "approved": "approved",
    "cancelling": "approved",
    "declined": "declined",
    "failed": "failed",
    "challenge_required": "challenge_required",
    "cancelled": "cancelled",
}


def _localize_params(params: dict[str, Any] | None, locale: Locale) -> dict[str, Any]:
    """Times are stored as ISO strings in UTC and shown in Asia/Seoul."""
    values = dict(params or {})
    ends_at = values.get("ends_at")
    if isinstance(ends_at, str):
        local = datetime.fromisoformat(ends_at).astimezone(SEOUL)
        values["ends_at"] = (
            local.strftime("%H:%M") if locale == "ko" else local.strftime("%H:%M KST")
        )
    return values


def payment_out(
    payment: PaymentState,
    catalog: Catalog,
    locale: Locale,
    *,
    challenge: PaymentChallenge | None = None,
) -> PaymentOut:
    card = None
    if payment.card_brand and payment.card_masked:
        card = CardOut(
            brand=payment.card_brand, masked=payment.card_masked, token=payment.card_token
        )
    error = None
    if payment.error_code:
        error = catalog.render_error(
            payment.error_code,
            locale,
            field=payment.error_field,
            params=_localize_params(payment.error_params, locale),
        )
    challenge_out = None
    if payment.status == "challenge_required" and challenge is not None:
        challenge_out = ChallengeOut(
            expires_at=challenge.expires_at,
            attempts_left=max(challenge.max_attempts - challenge.attempts, 0),
        )
    return PaymentOut(
        id=payment.id,
        status=PUBLIC_STATUS[payment.status],
        amount=payment.amount,
        currency=payment.currency,
        order_id=payment.order_id,
        customer_id=payment.customer_id,
        card=card,
        approval_code=payment.approval_code,
        challenge=challenge_out,
        error=error,
        created_at=payment.created_at,
    )


def http_status(payment: PaymentState, catalog: Catalog) -> int:
    """201 approved or waiting for step-up, 200 cancelled, else the catalog's status for
    the error (402 card and issuer declines, 503 network and maintenance)."""
    if payment.error_code:
        return catalog.entry(payment.error_code).status
    if payment.status == "cancelled":
        return 200
    return 201
