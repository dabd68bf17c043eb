"""The typed card of a payment waiting for its step-up code, until the code comes back.

The re-authorization after a step-up needs the card number and the CVC (or birth date and
password digits) again. They are sensitive authentication data: PCI DSS 4.0 allows keeping
them only until authorization completes, encrypted if stored (3.3.1, 3.3.2), and never in
the database here. Two holders, one interface (ADR 0002):

* :class:`MemoryPendingCards`, the embedded default: the API process's memory. A challenge
  answered by another process, or after a restart, finds nothing (the customer starts
  again).
* :class:`RedisPendingCards`, when ``HAETAE_REDIS_URL`` is set: AES-256-GCM ciphertext in
  Redis under the payment id, expiring with the code. The key is derived from the master
  key and never leaves the API processes, so Redis holds nothing readable; the payment id
  is the ciphertext's associated data, so an entry cannot be replayed under another id.
  Several API processes then complete each other's step-ups.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Protocol

import redis.asyncio as redis
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haetae.payments.connectors.base import CardDetails

log = structlog.get_logger(__name__)


class PendingCards(Protocol):
    async def put(self, payment_id: str, card: CardDetails, ttl_seconds: float) -> None: ...

    async def take(self, payment_id: str) -> CardDetails | None:
        """The card, once: taking it removes it. None when expired or never held."""
        ...

    async def discard(self, payment_id: str) -> None: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Held:
    card: CardDetails
    expires: float


class MemoryPendingCards:
    """In this process's memory, for at most the code's lifetime."""

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    async def put(self, payment_id: str, card: CardDetails, ttl_seconds: float) -> None:
        now = time.monotonic()
        if len(self._held) >= 1024:  # drop expired entries now and then, not on every put
            self._held = {k: v for k, v in self._held.items() if v.expires > now}
        self._held[payment_id] = _Held(card, now + ttl_seconds)

    async def take(self, payment_id: str) -> CardDetails | None:
        held = self._held.pop(payment_id, None)
        if held is None or held.expires <= time.monotonic():
            return None
        return held.card

    async def discard(self, payment_id: str) -> None:
        self._held.pop(payment_id, None)

    async def close(self) -> None:
        self._held.clear()


class RedisPendingCards:
    """Encrypted in Redis, shared by the API processes (see the module doc)."""

    PREFIX = "haetae:pending-card:"

    def __init__(self, client: redis.Redis, key: bytes) -> None:
        self._client = client
        self._aead = AESGCM(key)

    @classmethod
    def from_url(cls, url: str, key: bytes, *, timeout: float = 1.0) -> RedisPendingCards:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, key)

    # Redis unreachable: the step-up cannot go on (its answer finds no card and fails as
    # expired, so the customer starts again), but the payment is not left half-answered.
    async def put(self, payment_id: str, card: CardDetails, ttl_seconds: float) -> None:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(asdict(card)).encode(), payment_id.encode())
        try:
            await self._client.set(
                self.PREFIX + payment_id, nonce + sealed, px=int(ttl_seconds * 1000)
            )
        except redis.RedisError as error:
            log.error("payment.pending_card_not_kept", payment_id=payment_id, error=repr(error))

    async def take(self, payment_id: str) -> CardDetails | None:
        try:
            stored = await self._client.getdel(self.PREFIX + payment_id)
        except redis.RedisError as error:
            log.error("payment.pending_card_unreachable", payment_id=payment_id, error=repr(error))
            return None
        if not isinstance(stored, bytes):  # None: expired, taken, or never held
            return None
        try:
            plain = self._aead.decrypt(stored[:12], stored[12:], payment_id.encode())
        except InvalidTag:  # another key (a rotated master key) or a tampered entry
            log.error("payment.pending_card_unreadable", payment_id=payment_id)
            return None
        return CardDetails(**json.loads(plain))

    async def discard(self, payment_id: str) -> None:
        try:
            await self._client.delete(self.PREFIX + payment_id)
        except redis.RedisError as error:  # it expires with the code anyway
            log.warning(
                "payment.pending_card_not_dropped", payment_id=payment_id, error=repr(error)
            )

    async def close(self) -> None:
        await self._client.aclose()
