"""Payments routes: thin, they parse and delegate to :class:`PaymentService`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response

from haetae.deps import LocaleDep, ServicesDep, require_scope
from haetae.errors import HaetaeError
from haetae.lean_routes import LeanRoute
from haetae.merchants.models import Merchant
from haetae.payments.schemas import ChallengeIn, PaymentCreate, PaymentOut
from haetae.security.api_keys import Principal

router = APIRouter(prefix="/v1/payments", tags=["payments"], route_class=LeanRoute)
PaymentsPrincipal = Annotated[Principal, Depends(require_scope("payments"))]

_ERROR_RESPONSES: dict[int | str, dict[str, str]] = {
    402: {"description": "Declined, or the card details are wrong (see error)"},
    409: {"description": "Idempotency-Key reused with a different body"},
    422: {"description": "Malformed request (error.field names the field)"},
    503: {"description": "Issuer unreachable or in maintenance"},
}


async def _merchant_of(services: ServicesDep, principal: Principal) -> Merchant:
    if principal.merchant_id is None:
        # Payments are taken on behalf of a merchant; a service key has none.
        raise HaetaeError("forbidden", params={"scope": "merchant key"})
    merchant = await services.merchants.get(principal.merchant_id)
    if merchant is None:
        raise HaetaeError("unauthorized", field="Authorization")
    return merchant


@router.post(
    "",
    response_model=PaymentOut,
    status_code=201,
    responses=_ERROR_RESPONSES,
    summary="Take a key-in card payment",
)
async def create_payment(
    body: PaymentCreate,
    services: ServicesDep,
    principal: PaymentsPrincipal,
    locale: LocaleDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> Response:
    merchant = await _merchant_of(services, principal)
    result = await services.payments.create(
        merchant, body, locale=locale, idempotency_key=idempotency_key
    )
    return result.to_response()


@router.get("/{payment_id}", response_model=PaymentOut, summary="Look a payment up")
async def get_payment(
    payment_id: str, services: ServicesDep, principal: PaymentsPrincipal, locale: LocaleDep
) -> PaymentOut:
    return await services.payments.get(principal.merchant_id, payment_id, locale)


@router.post(
    "/{payment_id}/challenge",
    response_model=PaymentOut,
    responses=_ERROR_RESPONSES,
    summary="Complete a step-up with the one-time code",
)
async def complete_challenge(
    payment_id: str,
    body: ChallengeIn,
    services: ServicesDep,
    principal: PaymentsPrincipal,
    locale: LocaleDep,
) -> Response:
    result = await services.payments.complete_challenge(
        principal.merchant_id, payment_id, body.otp, locale
    )
    return result.to_response()


@router.post(
    "/{payment_id}/cancel",
    response_model=PaymentOut,
    responses=_ERROR_RESPONSES,
    summary="Cancel an approved payment (reversal to the issuer)",
)
async def cancel_payment(
    payment_id: str, services: ServicesDep, principal: PaymentsPrincipal, locale: LocaleDep
) -> Response:
    result = await services.payments.cancel(principal.merchant_id, payment_id, locale)
    return result.to_response()
