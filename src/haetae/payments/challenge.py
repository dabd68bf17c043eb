"""Step-up: one-time codes and the card details that wait in memory for them.

The CVC, birth date and password digits may exist only in memory until authorization
(PCI DSS 3.3.1), so a payment waiting for its code keeps the typed card here, never in the
database. A process restart therefore expires pending challenges: the customer starts again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from haetae.payments.connectors.base import CardDetails, StepUpResult

# ECI for a fully authenticated 3-D Secure transaction, per network.
_ECI_AUTHENTICATED = {"visa": "05", "mastercard": "02", "amex": "05", "jcb": "05"}


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def code_hash(key: bytes, payment_id: str, code: str) -> str:
    return hmac.new(key, f"otp:{payment_id}:{code}".encode(), hashlib.sha256).hexdigest()


def step_up_result(brand: str | None) -> StepUpResult:
    return StepUpResult(status="Y", eci=_ECI_AUTHENTICATED.get(brand or "", "05"))


@dataclass(slots=True)
class _Held:
    card: CardDetails
    expires: float


class PendingCards:
    """Typed card details held for a payment that waits for its step-up code."""

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    def put(self, payment_id: str, card: CardDetails, ttl_seconds: float) -> None:
        now = time.monotonic()
        if len(self._held) >= 1024:  # drop expired entries now and then, not on every put
            self._held = {k: v for k, v in self._held.items() if v.expires > now}
        self._held[payment_id] = _Held(card, now + ttl_seconds)

    def take(self, payment_id: str) -> CardDetails | None:
        held = self._held.pop(payment_id, None)
        if held is None or held.expires <= time.monotonic():
            return None
        return held.card

    def discard(self, payment_id: str) -> None:
        self._held.pop(payment_id, None)
