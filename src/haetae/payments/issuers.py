"""Routing a card to its issuer's connection, and reversals owed to issuers."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from haetae.config import IssuerSettings
from haetae.payments.connectors.base import IssuerConnector, ReversalRequest
from haetae.payments.models import Payment

log = structlog.get_logger(__name__)

_RRN_ALPHABET = string.digits + string.ascii_uppercase


_RRN_LENGTH = 12
_RRN_VALUES = len(_RRN_ALPHABET) ** _RRN_LENGTH


def new_rrn() -> str:
    """12 alphanumeric characters (field 37): 36^12 values, so random ones do not collide.

    One random number written in base 36 (``secrets.choice`` per character made about twenty
    getrandom system calls per payment)."""
    value = secrets.randbelow(_RRN_VALUES)
    characters = []
    for _ in range(_RRN_LENGTH):
        value, digit = divmod(value, len(_RRN_ALPHABET))
        characters.append(_RRN_ALPHABET[digit])
    return "".join(characters)


@dataclass(frozen=True)
class Issuer:
    settings: IssuerSettings
    connector: IssuerConnector


class IssuerRouter:
    """The issuer whose longest BIN prefix matches the card; one with no prefixes takes the
    rest."""

    def __init__(self, issuers: list[Issuer]) -> None:
        if not issuers:
            raise ValueError("at least one issuer must be configured")
        self._issuers = issuers
        self._by_name = {issuer.settings.name: issuer for issuer in issuers}

    def route(self, pan: str) -> Issuer:
        best: tuple[int, Issuer] | None = None
        fallback: Issuer | None = None
        for issuer in self._issuers:
            if not issuer.settings.bin_prefixes:
                fallback = fallback or issuer
            for prefix in issuer.settings.bin_prefixes:
                if pan.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), issuer)
        chosen = best[1] if best else fallback
        return chosen if chosen is not None else self._issuers[0]

    @property
    def issuers(self) -> list[Issuer]:
        return list(self._issuers)

    def by_name(self, name: str) -> Issuer:
        return self._by_name[name]

    async def close(self) -> None:
        for issuer in self._issuers:
            await issuer.connector.close()


def reversal_request(payment: Payment) -> ReversalRequest:
    assert payment.rrn is not None and payment.transmitted_at is not None
    return ReversalRequest(
        rrn=payment.rrn,
        stan=payment.stan,
        amount=payment.amount,
        currency=payment.currency,
        merchant_id=payment.merchant_id,
        original_transmitted_at=payment.transmitted_at,
    )


def stuck_before(now: datetime, timeout_seconds: float) -> datetime:
    """An authorization older than this was in flight when its process died."""
    return now - timedelta(seconds=max(timeout_seconds * 3, 30.0))
