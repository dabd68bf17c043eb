"""The risk port payments call before authorization, and a provisional implementation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from haetae.db.buffered import RowBuffer

Decision = Literal["allow", "challenge", "review", "block"]


@dataclass(frozen=True, slots=True)
class PaymentRiskInput:
    merchant_id: str
    customer_id: str
    amount: int
    currency: str
    card_fingerprint: str
    card_brand: str
    challenge_threshold: int | None
    device_id: str | None = None
    ip: str | None = None
    # Stored as the decision's event id, so that a feature replay after a restart can find
    # the issuer's answer on the payment (``risk.features.warmup``).
    payment_id: str | None = None


@dataclass(frozen=True, slots=True)
class RiskDecision:
    decision: Decision
    score: int  # 0-100
    reasons: list[str] = field(default_factory=list)
    # Tell the engine the issuer's answer (True approved, False declined, None unknown), so
    # that velocity and decline-rate features count the payment with its outcome. It never
    # raises: the payment is already decided when it is called.
    observe: Callable[[bool | None], Awaitable[None]] | None = field(default=None, compare=False)
    # Store the decision in the caller's transaction: the payment's first write, so that a
    # payment and the decision that let it through are committed together (and the payment
    # does not wait for a commit of the decision's own first). None: nothing to store.
    record: Callable[[AsyncSession | RowBuffer], None] | None = field(default=None, compare=False)


class RiskEngine(Protocol):
    async def assess_payment(self, event: PaymentRiskInput) -> RiskDecision: ...


class ProvisionalRiskEngine:
    """Steps up payments at or above the merchant's amount threshold; allows the rest.

    Issuer-driven step-up (the issuer's soft decline "1A") is handled by the gateway, so the
    test card that always asks for it does not need a rule here. The fraud detection issue
    replaces this with features, rules and a model.
    """

    async def assess_payment(self, event: PaymentRiskInput) -> RiskDecision:
        if event.challenge_threshold is not None and event.amount >= event.challenge_threshold:
            return RiskDecision("challenge", 60, ["amount_at_or_above_step_up_threshold"])
        return RiskDecision("allow", 5, [])
