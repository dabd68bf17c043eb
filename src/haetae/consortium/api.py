"""The affiliates' door: ``POST /v1/consortium/messages``. No API key: a message is
authenticated by its signature (see :mod:`haetae.consortium.envelope`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from haetae.deps import ServicesDep

router = APIRouter(prefix="/v1/consortium", tags=["consortium"])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {
        "description": "consortium_sender_unknown (sender), consortium_signature_invalid (sig) "
        "or consortium_message_expired (signed_at: outside the time window)"
    },
    422: {
        "description": "consortium_wrong_recipient (recipient) or consortium_message_invalid "
        "(the field named)"
    },
    503: {"description": "consortium_case_failed: recorded, but send it again"},
}


@router.post(
    "/messages",
    responses=_ERRORS,
    summary="Receive a signed message from an affiliate; answers a signed acknowledgement",
    description="A message already accepted is answered with the same acknowledgement and "
    "applied only once.",
)
async def receive_message(
    services: ServicesDep, message: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    return await services.consortium.receive(message)
