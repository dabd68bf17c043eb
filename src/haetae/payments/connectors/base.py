"""The issuer port: how the gateway asks an issuer to authorize or reverse a payment.

Adapters (ISO 8583 over TCP, ...) implement :class:`IssuerConnector`. Failures are classified
by what they mean for the customer's money: :class:`IssuerUnreachable` means the request was
never sent (nothing to undo); :class:`IssuerTimeout` means it may have been authorized, so the
gateway must reverse it before telling the customer it failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class CardDetails:
    """The card as typed. Lives in memory for one authorization only; never logged."""

    pan: str = field(repr=False)
    exp_month: int
    exp_year: int  # four digits
    cvc: str | None = field(default=None, repr=False)
    birth_or_business_no: str | None = field(default=None, repr=False)
    password_2digits: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class StepUpResult:
    """Outcome of a 3-D Secure style challenge, sent with the re-authorization."""

    status: Literal["Y", "A"]  # Y authenticated, A attempted
    eci: str  # "05" Visa fully authenticated, "02" Mastercard, ...


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    card: CardDetails
    amount: int  # minor units
    currency: str  # ISO 4217 alpha-3
    merchant_id: str
    rrn: str  # retrieval reference number (field 37): 12 characters, unique per attempt
    transmitted_at: datetime  # timezone-aware UTC
    authentication: StepUpResult | None = None


@dataclass(frozen=True, slots=True)
class IssuerReply:
    response_code: str  # ISO 8583 field 39, e.g. "00", "51", "N7", "1A"
    stan: str  # field 11 as sent
    rrn: str  # field 37
    approval_code: str | None = None  # field 38
    additional: str | None = None  # field 44: which check failed ("C" CVC, "B" birth date)


@dataclass(frozen=True, slots=True)
class ReversalRequest:
    """An 0400 for an earlier authorization, matched by its RRN. It needs no card number:
    under the ``none`` card policy the platform no longer has it when a merchant cancels."""

    rrn: str
    amount: int
    currency: str
    merchant_id: str
    original_transmitted_at: datetime
    stan: str | None = None  # the original STAN (field 90); None when it never came back


class IssuerError(Exception):
    """Base of the failures that are not an answer from the issuer."""


class IssuerUnreachable(IssuerError):
    """Could not connect or send: the issuer never saw the request."""


class IssuerTimeout(IssuerError):
    """Sent but no answer in time (or the connection broke after sending): reverse it."""


class IssuerConnector(Protocol):
    async def authorize(self, request: AuthorizationRequest) -> IssuerReply: ...

    async def reverse(
        self, original: ReversalRequest, *, reason: Literal["timeout", "cancel"]
    ) -> IssuerReply:
        """Send an 0400 for ``original`` (matched by its RRN). Raises IssuerError if the
        issuer could not be reached or did not answer; callers retry."""
        ...

    async def close(self) -> None: ...
