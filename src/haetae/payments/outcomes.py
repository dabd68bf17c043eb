"""How a payment's outcome is recorded and answered: shared by the use cases and recovery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from fastapi.responses import Response

from haetae.bus.outbox import add_event
from haetae.catalog import Catalog, Locale
from haetae.db.engine import Statements
from haetae.payments.draft import PaymentState
from haetae.payments.idempotency import StoredResponse
from haetae.payments.models import PaymentChallenge
from haetae.payments.responses import http_status, payment_out
from haetae.payments.schemas import PaymentOut


@dataclass(slots=True)
class PaymentResult:
    status_code: int
    body: PaymentOut
    _json: str | None = None

    def json(self) -> str:
        """The body as JSON, serialized once by pydantic-core: the same text is the HTTP
        answer and the one stored for the Idempotency-Key (``stored_response``)."""
        if self._json is None:
            self._json = self.body.model_dump_json()
        return self._json

    def stored_response(self) -> StoredResponse:
        """What a retry with the same Idempotency-Key is answered: this answer, its JSON
        written as it is (an orjson.Fragment in the JSON column), not dumped again."""
        return StoredResponse(self.status_code, orjson.Fragment(self.json()))

    def to_response(self) -> Response:
        return Response(self.json(), status_code=self.status_code, media_type="application/json")


def fail(
    payment: PaymentState,
    status: str,
    code: str,
    field: str | None,
    params: dict[str, Any] | None = None,
) -> None:
    payment.status = status
    payment.error_code = code
    payment.error_field = field
    payment.error_params = params


def result_of(
    payment: PaymentState,
    catalog: Catalog,
    locale: Locale,
    challenge: PaymentChallenge | None = None,
) -> PaymentResult:
    body = payment_out(payment, catalog, locale, challenge=challenge)
    return PaymentResult(http_status(payment, catalog), body)


def add_payment_event(session: Statements, payment: PaymentState, now: datetime) -> None:
    """``payment.<status>`` with what consumers (fraud features, notices, analytics) need:
    the card only as brand, mask and fingerprint."""
    add_event(
        session,
        f"payment.{payment.status}",
        {
            "payment_id": payment.id,
            "merchant_id": payment.merchant_id,
            "customer_id": payment.customer_id,
            "order_id": payment.order_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "status": payment.status,
            "error_code": payment.error_code,
            "flags": payment.internal_flags,
            "card": {
                "brand": payment.card_brand,
                "masked": payment.card_masked,
                "fingerprint": payment.card_fingerprint,
            },
            "risk": {"decision": payment.risk_decision, "score": payment.risk_score},
            "device_id": payment.device_id,
            "ip": payment.ip,
            "occurred_at": now.isoformat(),
        },
    )
