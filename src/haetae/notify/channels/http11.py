"""A small HTTP/1.1 client for POSTing to one origin: a pool of keep-alive connections, each
an asyncio protocol whose responses httptools parses (the C parser uvicorn uses).

Why not aiohttp or httpx: a provider send is one short POST, and measured on loopback
(bench/RESULTS.md, Notifications: analysis) httpx spent about 2 ms of CPU per request and
aiohttp about 90 µs, against about 25 µs here: at thousands of notices a second, that
difference is most of a worker's budget. It does only what a provider channel needs: http
and https, keep-alive, responses sized by Content-Length, chunked or ended by the server
closing the connection, and nothing else (no redirects, proxies or cookies).
The caller bounds each request with ``asyncio.timeout``; a request cut short closes its
connection, whose state is then unknown.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

MAX_RESPONSE_BYTES = 1 << 20  # a provider's answer is a small JSON document


class HttpError(Exception):
    """The exchange failed below HTTP: no connection, or it broke before a full response."""


class _Stale(HttpError):
    """A kept-alive connection the server had closed: nothing of the request was answered."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection, one exchange at a time (no pipelining)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._answered = False  # any byte of the current response arrived
        self._sized = False  # the response has Content-Length or is chunked
        self._headers_done = False
        self.open = False
        self.keep_alive = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a stream transport
        self.open = True

    def data_received(self, data: bytes) -> None:
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"unreadable response: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return False  # let the transport close; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if exc is None and self._headers_done and not self._sized:
            # A body without a length ends where the connection does (HTTP/1.0 style):
            # httptools cannot be told about the end, so this is the message's end.
            self.keep_alive = False
            self.on_message_complete()
        elif self._answered:
            self._fail(HttpError(f"connection lost mid-response: {exc!r}"))
        else:
            self._fail(_Stale(f"connection closed before a response: {exc!r}"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._sized = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_RESPONSE_BYTES:
            self._fail(HttpError(f"response larger than {MAX_RESPONSE_BYTES} bytes"))
            self.close()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.open and self._parser.should_keep_alive()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._parser.get_status_code(), b"".join(self._body)))

    # use

    async def exchange(self, request: bytes) -> Response:
        if not self.open or self._transport is None:
            raise _Stale("connection already closed")
        self._body, self._size = [], 0
        self._answered = self._sized = self._headers_done = False
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.close()

    def _fail(self, error: HttpError) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


class Http11Pool:
    """Up to ``connections`` kept-alive connections to the origin of ``url``, for POSTs to
    that URL. Connections open on demand; the most recently used idle one is reused first,
    so a light load keeps to one warm connection."""

    def __init__(
        self, url: str, *, connections: int = 64, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the URL must look like http(s)://host[:port]/path")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = (
            (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]  # never send credentials from the URL
        self._head = f"POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: haetae\r\n"
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        lines = [self._head]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:  # would start a header of its own
                raise ValueError(f"header {name} contains a line break")
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        request = "".join(lines).encode("latin-1") + body
        async with self._slots:
            while self._idle:
                connection = self._idle.pop()
                if not connection.open:
                    continue
                try:
                    return await self._exchange(connection, request)
                except _Stale:
                    # Most likely closed by the server while idle, before it read the
                    # request: it goes again on another connection (a provider drops a
                    # repeat by its idempotency key).
                    continue
            return await self._exchange(await self._connect(), request)

    async def _exchange(self, connection: _Connection, request: bytes) -> Response:
        try:
            response = await connection.exchange(request)
        except BaseException:
            connection.close()  # failed or cut short by the caller's timeout: state unknown
            raise
        if connection.keep_alive and connection.open:
            self._idle.append(connection)
        else:
            connection.close()
        return response

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection,
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl else None,
            )
        except OSError as exc:  # refused, unreachable, a TLS failure (ssl.SSLError)
            raise HttpError(f"cannot connect to {self._host}:{self._port}: {exc!r}") from exc
        return connection

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
