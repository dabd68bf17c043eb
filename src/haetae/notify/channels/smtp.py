"""E-mail over SMTP (aiosmtplib), on one kept-open connection reused for consecutive sends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

import aiosmtplib
import structlog

from haetae.notify.channels.base import DeliveryError, OutgoingMessage, SendResult

log = structlog.get_logger(__name__)


def mask_email(address: str) -> str:
    """``alice@example.com`` → ``a***@example.com``: enough to tell deliveries apart in logs."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def build_email(message: OutgoingMessage, *, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.title  # non-ASCII is RFC 2047-encoded when flattened
    # Receivers drop a repeated Message-ID, so a delivery resent after a crash shows once.
    mail["Message-ID"] = f"<{message.delivery_id}@haetae>"
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail.set_content(message.body)
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html")
    return mail


def _classify(exc: Exception) -> DeliveryError:
    """A 4xx, a dropped connection or a timeout may pass; a 5xx will be refused again."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return DeliveryError(
            f"recipient refused: {detail}"[:300], retryable=all(400 <= c < 500 for c in codes)
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"smtp {exc.code}: {exc.message}"[:300], retryable=exc.code < 500)
    if isinstance(exc, aiosmtplib.SMTPNotSupported | ValueError):
        # The server lacks an extension we need, or the address cannot be sent: a retry
        # meets the same server and the same address.
        return DeliveryError(f"cannot send: {exc}"[:300], retryable=False)
    if isinstance(exc, TimeoutError):
        return DeliveryError("smtp timeout", retryable=True)
    # Refused or dropped connections (aiosmtplib's connection errors are OSErrors too).
    return DeliveryError(f"smtp connection failed: {exc}"[:300], retryable=True)


# Refusals after which aiosmtplib has reset the envelope (RSET) and the session can go on.
_SESSION_INTACT = (
    aiosmtplib.SMTPRecipientsRefused,
    aiosmtplib.SMTPResponseException,
    aiosmtplib.SMTPNotSupported,
    ValueError,
)


class SmtpChannel:
    def __init__(
        self,
        url: str,
        *,
        sender: str,
        timeout: float = 10.0,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP url must look like smtp://host:port or smtps://host:port")
        implicit_tls = parts.scheme == "smtps"
        self._sender = sender
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._client = aiosmtplib.SMTP(
            hostname=parts.hostname,
            port=parts.port or (465 if implicit_tls else 587 if starttls else 25),
            timeout=timeout,  # per command; the whole attempt is bounded in send()
            use_tls=implicit_tls,
            start_tls=starttls,
            username=username,
            password=password,
        )

    async def send(self, message: OutgoingMessage) -> SendResult:
        fields = {
            "delivery_id": message.delivery_id,
            "channel": message.channel,
            "to": mask_email(message.to),
        }
        # One connection carries one SMTP transaction at a time.
        async with self._lock:
            try:
                mail = build_email(message, sender=self._sender)  # ValueError: a bad header
                try:
                    await self._attempt(mail)
                except aiosmtplib.SMTPServerDisconnected:
                    # The server dropped the idle connection; try once on a fresh one.
                    log.info("smtp.reconnect", **fields)
                    self._client.close()
                    await self._attempt(mail)
            except asyncio.CancelledError:
                self._client.close()  # cancelled mid-transaction: start clean next time
                raise
            except Exception as exc:
                error = _classify(exc)
                if not isinstance(exc, _SESSION_INTACT):
                    # Timed out or dropped mid-conversation: the session state is unknown.
                    self._client.close()
                log.warning(
                    "smtp.failed",
                    **fields,
                    error=type(exc).__name__,
                    retryable=error.retryable,
                )
                raise error from exc
        log.info("smtp.sent", **fields)
        return SendResult(provider_message_id=mail["Message-ID"])

    async def _attempt(self, mail: EmailMessage) -> None:
        async with asyncio.timeout(self._timeout):
            if not self._client.is_connected:
                await self._client.connect()
            await self._client.send_message(mail)

    async def close(self) -> None:
        async with self._lock:
            if not self._client.is_connected:
                return
            try:
                await self._client.quit()
            except (aiosmtplib.SMTPException, OSError):
                self._client.close()  # a goodbye that fails still ends the connection
