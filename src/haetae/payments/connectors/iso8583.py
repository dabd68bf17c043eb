"""The ISO 8583 issuer link: persistent TCP connections with 2-byte length framing.

One request is in flight per connection, so a reply is always the answer to the last request
on its connection; the STAN/RRN check is only a guard against a confused peer. Anything that
goes wrong after a request was written closes that connection, so a late reply can never be
read as the answer to the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from haetae.config import IssuerSettings
from haetae.payments.connectors import iso8583_codec as codec
from haetae.payments.connectors.base import (
    AuthorizationRequest,
    IssuerReply,
    IssuerTimeout,
    IssuerUnreachable,
    ReversalRequest,
)

log = structlog.get_logger(__name__)

# Enough to answer any reversal a gateway sends within minutes of its authorization.
_REMEMBERED_STANS = 10_000


class _StanCounter:
    """Process-wide trace numbers 000001..999999, then wrapping to 000001."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # several event loops (threads) may share the process
        self._last = 0

    def next(self) -> str:
        with self._lock:
            self._last = self._last % 999_999 + 1
            return f"{self._last:06d}"


_stans = _StanCounter()


class Iso8583Timeout(IssuerTimeout):
    """An :class:`IssuerTimeout` that names the STAN it was sent with (for field 90 of the
    reversal), so a caller can persist it before reversing."""

    def __init__(self, message: str, *, stan: str, rrn: str) -> None:
        super().__init__(message)
        self.stan = stan
        self.rrn = rrn


def next_stan() -> str:
    return _stans.next()


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def usable(self) -> bool:
        # EOF or an error seen while idle means the issuer (or a middlebox) dropped it.
        return not (
            self.writer.is_closing() or self.reader.at_eof() or self.reader.exception() is not None
        )

    def abort(self) -> None:
        # Synchronous, so it also runs in a ``finally`` while the task is being cancelled.
        self.writer.close()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class Iso8583Connector:
    """:class:`~haetae.payments.connectors.base.IssuerConnector` over ISO 8583 / TCP."""

    def __init__(self, settings: IssuerSettings) -> None:
        self._settings = settings
        self._slots = asyncio.Semaphore(max(1, settings.pool_size))
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        # RRN -> STAN of the authorization, for field 90 of its reversal.
        self._sent_stans: OrderedDict[str, str] = OrderedDict()
        self._closed = False

    async def authorize(self, request: AuthorizationRequest) -> IssuerReply:
        stan = next_stan()
        message = codec.build_authorization(request, stan)
        self._remember(request.rrn, stan)
        reply = await self._exchange(
            message, stan=stan, rrn=request.rrn, parse=codec.parse_authorization_reply
        )
        log.info(
            "issuer.authorization",
            issuer=self._settings.name,
            rrn=request.rrn,
            stan=stan,
            response_code=reply.response_code,
        )
        return reply

    async def reverse(
        self,
        original: AuthorizationRequest | ReversalRequest,
        *,
        reason: codec.ReversalReason,
    ) -> IssuerReply:
        """Send an 0400 for ``original``. A :class:`ReversalRequest` (no card number) is
        what the gateway keeps; an AuthorizationRequest also works, and adds the PAN."""
        stan = next_stan()
        known = original.stan if isinstance(original, ReversalRequest) else None
        original_stan = known or self._sent_stans.get(original.rrn)
        message = codec.build_reversal(
            original,
            original_stan=original_stan,
            stan=stan,
            reason=reason,
            transmitted_at=datetime.now(UTC),
        )
        reply = await self._exchange(
            message, stan=stan, rrn=original.rrn, parse=codec.parse_reversal_reply
        )
        log.info(
            "issuer.reversal",
            issuer=self._settings.name,
            rrn=original.rrn,
            stan=stan,
            reason=reason,
            response_code=reply.response_code,
        )
        return reply

    async def close(self) -> None:
        self._closed = True
        connections = list(self._open)
        self._open.clear()
        self._idle.clear()
        await asyncio.gather(*(c.close() for c in connections))

    # --- internals ---------------------------------------------------------------------------

    def _remember(self, rrn: str, stan: str) -> None:
        self._sent_stans[rrn] = stan
        self._sent_stans.move_to_end(rrn)
        while len(self._sent_stans) > _REMEMBERED_STANS:
            self._sent_stans.popitem(last=False)

    async def _exchange(
        self,
        message: bytes,
        *,
        stan: str,
        rrn: str,
        parse: Callable[[bytes], IssuerReply],
    ) -> IssuerReply:
        if self._closed:
            raise IssuerUnreachable("connector is closed")
        # Waiting for a free connection is bounded like connecting: a request that waited
        # longer was never sent, and must not go out late after the gateway gave up on it.
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._settings.connect_timeout_seconds):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise IssuerUnreachable("no free connection to the issuer in time") from exc
        else:  # a free slot: taken at once, without arming a timer
            await self._slots.acquire()
        try:
            conn = await self._checkout()
            healthy = False
            try:
                reply = await self._send_and_receive(conn, message, parse, stan=stan, rrn=rrn)
                healthy = True
                return reply
            finally:
                # Also reached on cancellation: a reply may still be on its way, so the
                # connection cannot serve another request.
                if healthy and not self._closed:
                    self._idle.append(conn)
                else:
                    self._open.discard(conn)
                    conn.abort()
        finally:
            self._slots.release()

    async def _checkout(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            self._open.discard(conn)
            conn.abort()
        return await self._connect()

    async def _connect(self) -> _Connection:
        host, port = self._settings.host, self._settings.port
        try:
            async with asyncio.timeout(self._settings.connect_timeout_seconds):
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            log.warning(
                "issuer.unreachable",
                issuer=self._settings.name,
                host=host,
                port=port,
                error=type(exc).__name__,
            )
            raise IssuerUnreachable(f"cannot connect to issuer {host}:{port}") from exc
        conn = _Connection(reader, writer)
        self._open.add(conn)
        return conn

    async def _send_and_receive(
        self,
        conn: _Connection,
        message: bytes,
        parse: Callable[[bytes], IssuerReply],
        *,
        stan: str,
        rrn: str,
    ) -> IssuerReply:
        # From the first byte written on, the issuer may have seen the request: every failure
        # here is an IssuerTimeout, so the gateway reverses rather than assumes nothing happened.
        try:
            async with asyncio.timeout(self._settings.timeout_seconds):
                conn.writer.write(codec.frame(message))
                await conn.writer.drain()
                raw = await codec.read_frame(conn.reader)
        except TimeoutError as exc:
            raise Iso8583Timeout("no reply from issuer in time", stan=stan, rrn=rrn) from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise Iso8583Timeout(
                "issuer connection lost after sending", stan=stan, rrn=rrn
            ) from exc
        try:
            reply = parse(raw)
        except codec.CodecError as exc:
            raise Iso8583Timeout(
                f"unreadable reply from issuer: {exc}", stan=stan, rrn=rrn
            ) from exc
        if reply.stan != stan or reply.rrn != rrn:
            raise Iso8583Timeout("reply does not match the request (STAN/RRN)", stan=stan, rrn=rrn)
        return reply
