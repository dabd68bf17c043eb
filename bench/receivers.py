"""Loopback receivers for bench/notify.py, each run as its own process so its CPU shows
apart from the dispatcher's.

``http``: a provider endpoint that answers every POST with ``200 {"message_id": ...}`` at
once and checks nothing (no signature): a minimal HTTP/1.1 server on a raw asyncio protocol,
keep-alive, so that the receiver costs as little of the shared two cores as possible.

``smtp``: a real SMTP server (aiosmtpd) that accepts every message.

Both count what they receive by the sender's idempotency key (``Idempotency-Key`` header, or
the ``Message-ID`` of an e-mail): ``GET /_stats`` on the control port answers the number of
requests or messages, the number of distinct keys and a SHA-256 over the sorted distinct
keys (to compare with the database's delivery ids); ``POST /_reset`` forgets them. For
``http`` the control port is the receiving port; ``smtp`` takes ``--control-port``.

    .venv/bin/python bench/receivers.py http --port P
    .venv/bin/python bench/receivers.py smtp --port P --control-port Q
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
from typing import Any, cast

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^@>]+)", re.I | re.M)  # <delivery id@haetae>


class Tally:
    def __init__(self) -> None:
        self.count = 0
        self.keys: set[bytes] = set()

    def add(self, key: bytes) -> None:
        self.count += 1
        self.keys.add(key)

    def stats(self) -> dict[str, Any]:
        digest = hashlib.sha256(b"\n".join(sorted(self.keys))).hexdigest()
        return {"received": self.count, "distinct": len(self.keys), "digest": digest}

    def reset(self) -> None:
        self.count = 0
        self.keys.clear()


def key_digest(keys: list[str]) -> str:
    """What ``/_stats`` answers as ``digest`` for these keys (the caller's half)."""
    return hashlib.sha256(b"\n".join(sorted(k.encode() for k in set(keys)))).hexdigest()


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class HttpReceiver(asyncio.Protocol):
    """One connection: requests one after another (no pipelining is needed: clients wait
    for each answer), each parsed just enough to find its end and its idempotency key."""

    def __init__(self, tally: Tally, *, accept_posts: bool) -> None:
        self.tally = tally
        self.accept_posts = accept_posts
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).split(b"\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            if len(self.buffer) < end + 4 + length:
                return  # the body is still coming
            del self.buffer[: end + 4 + length]
            assert self.transport is not None
            self.transport.write(self._answer(head[0], headers))

    def _answer(self, request_line: bytes, headers: dict[bytes, bytes]) -> bytes:
        method, _, rest = request_line.partition(b" ")
        path = rest.partition(b" ")[0]
        if path == b"/_stats":
            return _response("200 OK", json.dumps(self.tally.stats()).encode())
        if path == b"/_reset":
            self.tally.reset()
            return _response("200 OK", b"{}")
        if method == b"POST" and self.accept_posts:
            key = headers.get(b"idempotency-key", b"")
            self.tally.add(key)
            return _response("200 OK", b'{"message_id":"' + key + b'"}')
        return _response("404 Not Found", b"{}")


class MailCounter:
    """aiosmtpd handler: accept every message, count it by its Message-ID."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        match = _MESSAGE_ID.search(envelope.content)
        self.tally.add(match.group(1) if match else b"")
        return "250 OK"


async def serve(kind: str, port: int, control_port: int | None) -> None:
    loop = asyncio.get_running_loop()
    tally = Tally()
    if kind == "http":
        await loop.create_server(
            lambda: HttpReceiver(tally, accept_posts=True), "127.0.0.1", port, backlog=1024
        )
    else:
        from aiosmtpd.smtp import SMTP

        handler = MailCounter(tally)
        # hostname given: aiosmtpd would otherwise look up this host's FQDN.
        await loop.create_server(
            lambda: SMTP(handler, hostname="localhost", ident="bench"),
            "127.0.0.1",
            port,
            backlog=1024,
        )
        assert control_port is not None
        await loop.create_server(
            lambda: HttpReceiver(tally, accept_posts=False), "127.0.0.1", control_port
        )
    await asyncio.Event().wait()  # until the benchmark stops the process


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("kind", choices=("http", "smtp"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int)
    args = parser.parse_args()
    if args.kind == "smtp" and args.control_port is None:
        parser.error("smtp needs --control-port")
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.kind, args.port, args.control_port))


if __name__ == "__main__":
    main()
