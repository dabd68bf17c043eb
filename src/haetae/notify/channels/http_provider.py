"""SMS and push through a provider that takes signed JSON over HTTP(S) (``http11``).

The request is signed like a webhook: ``X-Haetae-Signature: sha256=<hex>``, an HMAC-SHA256
over ``<X-Haetae-Timestamp>.<raw body>``, so the provider can check who sent it and refuse a
replay; :func:`verify_signature` is the receiver's half.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
import time
from typing import Any

import structlog

from haetae.notify.channels.base import DeliveryError, OutgoingMessage, SendResult
from haetae.notify.channels.http11 import Http11Pool, HttpError

log = structlog.get_logger(__name__)

_SIGNATURE_PREFIX = "sha256="
# 408 and 429 say "later"; 5xx is the provider's trouble. Any other 4xx refuses this request.
_RETRYABLE_4XX = frozenset({408, 429})


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return _SIGNATURE_PREFIX + digest.hexdigest()


def verify_signature(
    secret: bytes, timestamp: str, body: bytes, header: str, *, now: float, tolerance: int = 300
) -> bool:
    """True if ``header`` signs ``body`` at ``timestamp``, no more than ``tolerance`` seconds
    from ``now`` (either way), so that a captured request cannot be replayed later."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def mask_recipient(to: str) -> str:
    """Keep the last 4 characters of a phone number or push token, hide the rest."""
    return f"***{to[-4:]}" if len(to) > 8 else "***"


class HttpProviderChannel:
    def __init__(
        self,
        url: str,
        *,
        secret: bytes,
        timeout: float = 5.0,
        connections: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._secret = secret
        self._timeout = timeout
        # Kept-alive connections, reused for every send: no TCP+TLS handshake per message.
        self._pool = Http11Pool(url, connections=connections, ssl_context=ssl_context)
        self._log = log.bind()  # once: the lazy proxy binds anew on every call

    async def send(self, message: OutgoingMessage) -> SendResult:
        if message.channel not in ("sms", "push"):
            raise DeliveryError(f"not an sms or push message: {message.channel}", retryable=False)
        body = json.dumps(
            {
                "id": message.delivery_id,
                "channel": message.channel,
                "to": message.to,
                "title": message.title,
                "body": message.body,
                "type": message.sms_type,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.delivery_id,
            "X-Haetae-Timestamp": timestamp,
            "X-Haetae-Signature": sign(self._secret, timestamp, body),
        }
        try:
            # The whole exchange (a connection if needed, the request, the answer) within
            # the timeout, as the port promises.
            async with asyncio.timeout(self._timeout):
                response = await self._pool.post(body, headers)
        except TimeoutError as exc:
            log.warning("provider.failed", **_fields(message), error="timeout", retryable=True)
            raise DeliveryError("provider timeout", retryable=True) from exc
        except HttpError as exc:
            log.warning(
                "provider.failed", **_fields(message), error=type(exc).__name__, retryable=True
            )
            raise DeliveryError(f"provider unreachable: {exc}"[:300], retryable=True) from exc

        status = response.status
        if 200 <= status < 300:
            self._log.info("provider.sent", **_fields(message), status=status)
            return SendResult(provider_message_id=_message_id(response.body))
        retryable = status >= 500 or status in _RETRYABLE_4XX
        log.warning("provider.failed", **_fields(message), status=status, retryable=retryable)
        # Not the response text: a provider may echo the request, and with it a one-time code.
        raise DeliveryError(f"provider HTTP {status}", retryable=retryable)

    async def close(self) -> None:
        await self._pool.close()


def _fields(message: OutgoingMessage) -> dict[str, str]:
    return {
        "delivery_id": message.delivery_id,
        "channel": message.channel,
        "to": mask_recipient(message.to),
    }


def _message_id(raw: bytes) -> str | None:
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return None  # accepted without a JSON body: nothing to record
    value = data.get("message_id") if isinstance(data, dict) else None
    return None if value is None else str(value)
