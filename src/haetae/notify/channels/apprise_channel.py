"""The long tail of providers (chat, push services, webhooks) through Apprise URLs.

Every URL gets every message: the recipient is in the URL (a chat room, a topic), not in
``OutgoingMessage.to``, so this suits an operations channel more than one customer's phone.
"""

from __future__ import annotations

import asyncio
import logging

import apprise
import structlog

from haetae.notify.channels.base import DeliveryError, OutgoingMessage, SendResult

log = structlog.get_logger(__name__)


class AppriseChannel:
    def __init__(self, urls: list[str], *, timeout: float = 10.0) -> None:
        # Apprise logs whole payloads at DEBUG, and a payload may hold a one-time code.
        apprise_log = logging.getLogger("apprise")
        apprise_log.setLevel(max(apprise_log.getEffectiveLevel(), logging.INFO))
        self._timeout = timeout
        self._apprise = apprise.Apprise()
        for number, url in enumerate(urls, start=1):
            if not self._apprise.add(url):
                # Not the URL itself: it usually carries the service's token.
                raise ValueError(f"Apprise cannot use URL #{number}")

    async def send(self, message: OutgoingMessage) -> SendResult:
        fields = {"delivery_id": message.delivery_id, "channel": message.channel}
        try:
            # Apprise is synchronous (requests underneath): run it off the event loop. A
            # timeout frees the caller; the worker thread ends on Apprise's own socket timeouts.
            async with asyncio.timeout(self._timeout):
                result = await asyncio.to_thread(
                    self._apprise.notify, body=message.body, title=message.title
                )
        except TimeoutError as exc:
            log.warning("apprise.failed", **fields, error="timeout", retryable=True)
            raise DeliveryError("apprise timeout", retryable=True) from exc
        if not result:
            # Apprise does not say why (it logs it); a provider hiccup is the common case.
            log.warning("apprise.failed", **fields, retryable=True)
            raise DeliveryError("apprise: a service refused or failed", retryable=True)
        log.info("apprise.sent", **fields, services=len(self._apprise))
        return SendResult()

    async def close(self) -> None:
        """Nothing is held open: Apprise makes a fresh request per notification."""
