"""SMS and push through a provider that takes signed JSON over HTTP(S) (httpx).

The request is signed like a webhook: ``X-Haetae-Signature: sha256=<hex>``, an HMAC-SHA256
over ``<X-Haetae-Timestamp>.<raw body>``, so the provider can check who sent it and refuse a
replay; :func:`verify_signature` is the receiver's half.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import structlog

from haetae.notify.channels.base import DeliveryError, OutgoingMessage, SendResult

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
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        self._secret = secret
        self._timeout = timeout
        # One pooled client for every send: keep-alive saves a TCP+TLS handshake per message.
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    async def send(self, message: OutgoingMessage) -> SendResult:
        fields = {
            "delivery_id": message.delivery_id,
            "channel": message.channel,
            "to": mask_recipient(message.to),
        }
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
            # httpx bounds each phase; this bounds the whole exchange, as the port promises.
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(
                    self._url, content=body, headers=headers, timeout=self._timeout
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            log.warning("provider.failed", **fields, error="timeout", retryable=True)
            raise DeliveryError("provider timeout", retryable=True) from exc
        except httpx.TransportError as exc:
            log.warning("provider.failed", **fields, error=type(exc).__name__, retryable=True)
            raise DeliveryError(f"provider unreachable: {exc!r}"[:300], retryable=True) from exc

        status = response.status_code
        if response.is_success:
            log.info("provider.sent", **fields, status=status)
            return SendResult(provider_message_id=_message_id(response))
        retryable = status >= 500 or status in _RETRYABLE_4XX
        log.warning("provider.failed", **fields, status=status, retryable=retryable)
        # Not the response text: a provider may echo the request, and with it a one-time code.
        raise DeliveryError(f"provider HTTP {status}", retryable=retryable)

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _message_id(response: httpx.Response) -> str | None:
    try:
        data: Any = response.json()
    except ValueError:
        return None  # accepted without a JSON body: nothing to record
    value = data.get("message_id") if isinstance(data, dict) else None
    return None if value is None else str(value)
