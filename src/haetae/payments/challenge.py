"""Step-up: one-time codes and the authentication result sent with the re-authorization.
The typed card waits for the code in ``payments.pending_cards``."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from haetae.payments.connectors.base import StepUpResult

# ECI for a fully authenticated 3-D Secure transaction, per network.
_ECI_AUTHENTICATED = {"visa": "05", "mastercard": "02", "amex": "05", "jcb": "05"}


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def code_hash(key: bytes, payment_id: str, code: str) -> str:
    return hmac.new(key, f"otp:{payment_id}:{code}".encode(), hashlib.sha256).hexdigest()


def step_up_result(brand: str | None) -> StepUpResult:
    return StepUpResult(status="Y", eci=_ECI_AUTHENTICATED.get(brand or "", "05"))
