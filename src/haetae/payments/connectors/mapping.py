"""ISO 8583 field 39 (and 44) → what we tell the customer. Pure data, no I/O.

Lost and stolen cards get the generic decline text (never reveal why, as Stripe and the
networks advise) and an internal flag analysts can see. Visa's retry groups ("never approve",
"not now", "fix the data") are kept as ``retry_class`` for the merchant-side retry policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OutcomeStatus = Literal["approved", "declined", "failed", "challenge_required"]
RetryClass = Literal["never", "later", "fix_data", "none"]


@dataclass(frozen=True, slots=True)
class IssuerOutcome:
    status: OutcomeStatus
    error_code: str | None = None
    field: str | None = None
    flags: tuple[str, ...] = ()
    retry_class: RetryClass = "none"
    reverse: bool = False  # the issuer holds money we will not take: send a reversal


_APPROVED = IssuerOutcome("approved")


def _declined(
    code: str, *, field: str | None = None, flags: tuple[str, ...] = (), retry: RetryClass
) -> IssuerOutcome:
    return IssuerOutcome("declined", code, field, flags, retry)


RESPONSE_CODES: dict[str, IssuerOutcome] = {
    "00": _APPROVED,
    # A partial approval holds less than asked; we do not take partial payments, so it is a
    # decline and the held amount is released.
    "10": IssuerOutcome(
        "declined", "card_declined", flags=("partial_approval",), retry_class="never", reverse=True
    ),
    "04": _declined("card_declined", flags=("pick_up_card",), retry="never"),
    "05": _declined("card_declined", retry="never"),
    "07": _declined("card_declined", flags=("pick_up_card_special",), retry="never"),
    "12": _declined("transaction_not_permitted", retry="never"),
    "13": _declined("card_declined", flags=("invalid_amount",), retry="fix_data"),
    "14": _declined("card_number_unknown", field="card.number", retry="fix_data"),
    "15": _declined("card_number_unknown", field="card.number", retry="never"),
    "41": _declined("card_declined", flags=("lost_card",), retry="never"),
    "43": _declined("card_declined", flags=("stolen_card",), retry="never"),
    "51": _declined("insufficient_funds", retry="later"),
    "54": _declined("card_expired_at_issuer", field="card.exp_year", retry="fix_data"),
    "55": _declined("card_password_incorrect", field="card.password_2digits", retry="fix_data"),
    "57": _declined("transaction_not_permitted", retry="never"),
    "59": _declined("card_declined", flags=("issuer_suspects_fraud",), retry="later"),
    "61": _declined("limit_exceeded", retry="later"),
    "62": _declined("transaction_not_permitted", flags=("restricted_card",), retry="never"),
    "65": _declined("frequency_limit_exceeded", retry="later"),
    "75": _declined("card_password_incorrect", flags=("pin_tries_exceeded",), retry="never"),
    "91": IssuerOutcome("failed", "issuer_unavailable", retry_class="later"),
    "96": IssuerOutcome("failed", "issuer_system_error", retry_class="later"),
    "1A": IssuerOutcome("challenge_required"),
}

# N7 (CVV2 failure) says which card-verification value failed in field 44.
_VERIFICATION_FAILURES: dict[str, IssuerOutcome] = {
    "C": _declined("cvc_mismatch", field="card.cvc", retry="fix_data"),
    "B": _declined(
        "holder_verification_failed", field="card.birth_or_business_no", retry="fix_data"
    ),
}


def outcome_for(response_code: str, additional: str | None = None) -> IssuerOutcome:
    if response_code == "N7":
        return _VERIFICATION_FAILURES.get((additional or "C")[:1], _VERIFICATION_FAILURES["C"])
    known = RESPONSE_CODES.get(response_code)
    if known is not None:
        return known
    # An unknown code is a decline; the flag lets operators add it to the table.
    return _declined("card_declined", flags=(f"unmapped_response_{response_code}",), retry="never")
