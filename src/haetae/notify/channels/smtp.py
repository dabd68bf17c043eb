"""E-mail over SMTP (aiosmtplib), on a small pool of kept-open connections, each reused for
many messages one after another (an SMTP connection carries one transaction at a time) and
reopened when the server dropped it or a send left it in an unknown state."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
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


def message_id(delivery_id: str) -> str:
    # Receivers drop a repeated Message-ID, so a delivery resent after a crash shows once.
    return f"<{delivery_id}@haetae>"


def _header(value: str) -> str:
    """A header value as it goes on the wire: non-ASCII (or very long) text as RFC 2047
    encoded words folded with CRLF; a line break, which would start a header of its own,
    refused."""
    if "\r" in value or "\n" in value:
        raise ValueError("a header value may not contain a line break")
    if value.isascii() and len(value) <= 900:  # RFC 5322 allows 998 characters a line
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


def _base64_part(subtype: str, text: str) -> list[str]:
    encoded = base64.encodebytes(text.encode()).decode("ascii")  # lines of 76, "\n"-ended
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: base64",
        "",
        *encoded.splitlines(),
    ]


def build_email(message: OutgoingMessage, *, sender: str) -> bytes:
    """The message as sent (CRLF line ends): the text part, and the HTML part as its
    alternative when there is one, both UTF-8 in base64.

    Written out directly rather than through ``email.message.EmailMessage``, whose header
    registry re-parses every header: with a notice's text and HTML that took about 2.4 ms
    of CPU per message, flattened, against about 0.05 ms here (bench/RESULTS.md,
    Notifications: analysis); alone it would cap a worker near 400 e-mails/s.
    ``sender`` is a ready ``From`` value (see :class:`SmtpChannel`); an address outside ASCII
    goes in as UTF-8, which the server must accept with SMTPUTF8."""
    if "\r" in message.to or "\n" in message.to:
        raise ValueError("a header value may not contain a line break")
    lines = [
        f"From: {sender}",
        f"To: {message.to}",
        f"Subject: {_header(message.title)}",
        f"Message-ID: {message_id(message.delivery_id)}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        "MIME-Version: 1.0",
    ]
    if message.html is None:
        lines += _base64_part("plain", message.body)
    else:
        # "=_" cannot occur in base64 text, so the boundary cannot appear inside a part.
        boundary = f"=_{message.delivery_id}"
        lines += [
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "",
            f"--{boundary}",
            *_base64_part("plain", message.body),
            f"--{boundary}",
            *_base64_part("html", message.html),
            f"--{boundary}--",
        ]
    return ("\r\n".join(lines) + "\r\n").encode()


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
        connections: int = 8,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP url must look like smtp://host:port or smtps://host:port")
        if connections < 1:
            raise ValueError("an SMTP channel needs at least one connection")
        implicit_tls = parts.scheme == "smtps"
        name, address = parseaddr(sender)
        if not address:
            raise ValueError(f"not an e-mail sender: {sender!r}")
        self._sender_address = address  # the envelope's MAIL FROM
        self._sender = _header(formataddr((name, address), charset="utf-8"))
        self._timeout = timeout
        self._clients = [
            aiosmtplib.SMTP(
                hostname=parts.hostname,
                port=parts.port or (465 if implicit_tls else 587 if starttls else 25),
                # No timer per command (four a message, measurable at a thousand messages
                # a second): _attempt() bounds the whole attempt, connecting included.
                timeout=None,
                use_tls=implicit_tls,
                start_tls=starttls,
                username=username,
                password=password,
            )
            for _ in range(connections)
        ]
        # Last in, first out: a light load keeps using one warm connection, and the others
        # are only opened when sends overlap. Each is opened on first use.
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        for client in self._clients:
            self._idle.put_nowait(client)
        self._log = log.bind()  # once: the lazy proxy binds anew on every call

    async def send(self, message: OutgoingMessage) -> SendResult:
        fields = {
            "delivery_id": message.delivery_id,
            "channel": message.channel,
            "to": mask_email(message.to),
        }
        try:
            mail = build_email(message, sender=self._sender)  # built before taking a connection
        except ValueError as exc:  # a header that cannot be sent: the same next time
            error = _classify(exc)
            log.warning("smtp.failed", **fields, error=type(exc).__name__, retryable=False)
            raise error from exc
        client = await self._idle.get()
        try:
            await self._send_on(client, message.to, mail, fields)
        finally:
            self._idle.put_nowait(client)
        self._log.info("smtp.sent", **fields)
        return SendResult(provider_message_id=message_id(message.delivery_id))

    async def _send_on(
        self, client: aiosmtplib.SMTP, to: str, mail: bytes, fields: dict[str, str]
    ) -> None:
        try:
            try:
                await self._attempt(client, to, mail)
            except aiosmtplib.SMTPServerDisconnected:
                # The server dropped the idle connection; try once on a fresh one.
                log.info("smtp.reconnect", **fields)
                client.close()
                await self._attempt(client, to, mail)
        except asyncio.CancelledError:
            client.close()  # cancelled mid-transaction: start clean next time
            raise
        except Exception as exc:
            error = _classify(exc)
            if not isinstance(exc, _SESSION_INTACT):
                # Timed out or dropped mid-conversation: the session state is unknown.
                client.close()
            log.warning(
                "smtp.failed",
                **fields,
                error=type(exc).__name__,
                retryable=error.retryable,
            )
            raise error from exc

    async def _attempt(self, client: aiosmtplib.SMTP, to: str, mail: bytes) -> None:
        # Addresses outside ASCII need the server's SMTPUTF8 (refused for good without it).
        utf8 = not (to.isascii() and self._sender_address.isascii())
        async with asyncio.timeout(self._timeout):
            if not client.is_connected:
                await client.connect()
            await client.sendmail(
                self._sender_address, [to], mail, mail_options=["SMTPUTF8"] if utf8 else None
            )

    async def close(self) -> None:
        """Say goodbye on every open connection, once the sends using them are done."""
        taken = [await self._idle.get() for _ in self._clients]
        try:
            for client in taken:
                if not client.is_connected:
                    continue
                try:
                    async with asyncio.timeout(self._timeout):
                        await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()  # a goodbye that fails still ends the connection
        finally:
            for client in taken:
                self._idle.put_nowait(client)
