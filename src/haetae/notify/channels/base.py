"""The channel port: how the dispatcher hands one delivery to a provider.

Failures say whether trying again can help (:class:`DeliveryError.retryable`): a timeout or a
5xx is worth a retry with backoff, a rejected address is not. Every message carries its
delivery id, sent as the provider's idempotency key (HTTP ``Idempotency-Key``, e-mail
``Message-ID``), so that a delivery repeated after a crash is dropped by the receiver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

ChannelName = Literal["sms", "push", "email", "inbox"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    delivery_id: str  # unique per delivery; the receiver's de-duplication key
    channel: ChannelName
    to: str  # phone number (E.164), push token, or e-mail address
    title: str
    body: str  # plain text: the SMS/LMS or push text, or the e-mail's text part
    html: str | None = None  # e-mail only
    sms_type: Literal["sms", "lms"] | None = None  # SMS only: by EUC-KR length (90 bytes)


@dataclass(frozen=True, slots=True)
class SendResult:
    provider_message_id: str | None = None


class DeliveryError(Exception):
    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Channel(Protocol):
    async def send(self, message: OutgoingMessage) -> SendResult:
        """Deliver or raise :class:`DeliveryError`; never block longer than its timeout."""
        ...

    async def close(self) -> None: ...
