"""The delivery channels against real receivers on loopback: an SMTP server (aiosmtpd), a
provider's HTTP endpoint and Apprise's JSON target (aiohttp)."""

from __future__ import annotations

import asyncio
import email
import ipaddress
import json
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from haetae.notify.channels.apprise_channel import AppriseChannel
from haetae.notify.channels.base import Channel, DeliveryError, OutgoingMessage
from haetae.notify.channels.http_provider import HttpProviderChannel, sign, verify_signature
from haetae.notify.channels.smtp import SmtpChannel
from tests.helpers import free_port

SECRET = b"provider-shared-secret"


def mail(n: int, to: str = "kim@example.com") -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=f"dlv-{n}",
        channel="email",
        to=to,
        title=f"해태 결제 알림 {n}",
        body=f"결제가 승인되었습니다 ({n}).",
        html=f"<p>결제가 승인되었습니다 <b>({n})</b>.</p>",
    )


def sms(n: int) -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=f"sms-{n}",
        channel="sms",
        to="+821012345678",
        title="해태",
        body=f"[해태] 인증번호 {n:06d}",
        sms_type="sms",
    )


# --- SMTP -------------------------------------------------------------------------------


@dataclass
class Received:
    peer: tuple[str, int]  # the client's address: one per SMTP connection
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class MailSink:
    """An aiosmtpd handler that keeps what it receives and refuses some recipients."""

    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(tuple(session.peer), list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on a fixed loopback port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sink = MailSink()
        self._controller: Controller | None = None

    def start(self) -> None:
        # server_hostname skips a reverse-DNS lookup of this host.
        self._controller = Controller(
            self.sink, hostname="127.0.0.1", port=self.port, server_hostname="localhost"
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def smtp_channel(smtp_server: SmtpServer) -> AsyncIterator[SmtpChannel]:
    channel = SmtpChannel(smtp_server.url, sender="Haetae <noreply@haetae.test>", timeout=2.0)
    yield channel
    await channel.close()


async def test_smtp_delivers_three_messages_on_one_connection(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    port: Channel = smtp_channel  # the class fits the port
    results = [await port.send(mail(n)) for n in range(3)]

    received = smtp_server.sink.received
    assert len(received) == 3
    assert len({r.peer for r in received}) == 1  # one SMTP connection carried all three
    for n, got in enumerate(received):
        assert got.rcpt_tos == ["kim@example.com"]
        assert got.message["To"] == "kim@example.com"
        assert got.message["From"].addresses[0].addr_spec == "noreply@haetae.test"
        assert got.message["Subject"] == f"해태 결제 알림 {n}"
        assert f"dlv-{n}" in got.message["Message-ID"]
        assert got.message["Date"] is not None
        text = got.message.get_body(("plain",))
        html = got.message.get_body(("html",))
        assert text is not None and html is not None
        assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
        assert text.get_content().strip() == f"결제가 승인되었습니다 ({n})."
        assert f"<b>({n})</b>" in html.get_content()
        assert results[n].provider_message_id == f"<dlv-{n}@haetae>"


async def test_smtp_refused_recipient_is_final_and_the_session_goes_on(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    smtp_server.sink.refuse.add("nobody@example.com")

    with pytest.raises(DeliveryError) as caught:
        await smtp_channel.send(mail(1, to="nobody@example.com"))
    assert caught.value.retryable is False
    assert "550" in caught.value.reason

    await smtp_channel.send(mail(2))
    assert [r.message["Subject"] for r in smtp_server.sink.received] == ["해태 결제 알림 2"]


async def test_smtp_server_down_is_retryable(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    await smtp_channel.send(mail(1))
    smtp_server.stop()

    with pytest.raises(DeliveryError) as caught:
        await smtp_channel.send(mail(2))
    assert caught.value.retryable is True


async def test_smtp_nothing_listening_is_retryable() -> None:
    channel = SmtpChannel(f"smtp://127.0.0.1:{free_port()}", sender="a@haetae.test", timeout=2)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(mail(1))
    assert caught.value.retryable is True
    await channel.close()


async def test_smtp_reconnects_after_a_server_restart(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    await smtp_channel.send(mail(1))
    first = smtp_server.sink.received[0].peer

    smtp_server.stop()
    smtp_server.start()
    await smtp_channel.send(mail(2))

    assert [r.message["Subject"] for r in smtp_server.sink.received] == [
        "해태 결제 알림 1",
        "해태 결제 알림 2",
    ]
    assert smtp_server.sink.received[1].peer != first  # a fresh connection


def test_smtp_url_must_be_smtp() -> None:
    with pytest.raises(ValueError, match="smtp://"):
        SmtpChannel("http://127.0.0.1:25", sender="a@haetae.test")


async def test_smtp_overlapping_sends_share_a_small_pool(smtp_server: SmtpServer) -> None:
    channel = SmtpChannel(smtp_server.url, sender="a@haetae.test", timeout=2.0, connections=3)
    await asyncio.gather(*(channel.send(mail(n)) for n in range(30)))
    await channel.close()

    received = smtp_server.sink.received
    assert sorted(r.message["Subject"] for r in received) == sorted(
        f"해태 결제 알림 {n}" for n in range(30)
    )
    per_connection = Counter(r.peer for r in received)
    assert len(per_connection) == 3  # overlapping sends opened the whole pool, and no more
    assert min(per_connection.values()) > 1  # each connection carried several messages


async def test_smtp_korean_sender_name_and_a_text_only_message(smtp_server: SmtpServer) -> None:
    channel = SmtpChannel(smtp_server.url, sender="해태뱅크 <noreply@haetae.test>", timeout=2.0)
    text_only = OutgoingMessage("dlv-t", "email", "kim@example.com", "안내", "본문입니다.")
    await channel.send(text_only)
    await channel.close()

    got = smtp_server.sink.received[0].message
    assert got["From"].addresses[0].display_name == "해태뱅크"
    assert got["From"].addresses[0].addr_spec == "noreply@haetae.test"
    assert got.get_content_type() == "text/plain"
    assert got.get_content().strip() == "본문입니다."


async def test_smtp_header_with_a_line_break_is_refused_for_good(
    smtp_server: SmtpServer, smtp_channel: SmtpChannel
) -> None:
    forged = OutgoingMessage("dlv-x", "email", "kim@example.com", "hi\r\nBcc: x@evil.test", "b")
    with pytest.raises(DeliveryError) as caught:
        await smtp_channel.send(forged)
    assert caught.value.retryable is False
    assert smtp_server.sink.received == []


# --- HTTP provider ----------------------------------------------------------------------


@dataclass
class Seen:
    headers: dict[str, str]
    body: dict[str, Any]
    signature_ok: bool
    peer: tuple[str, int]


@dataclass
class Provider:
    """A provider endpoint that checks the signature like a real receiver would."""

    status: int = 200
    hang: bool = False
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        ok = verify_signature(
            SECRET,
            request.headers.get("X-Haetae-Timestamp", ""),
            raw,
            request.headers.get("X-Haetae-Signature", ""),
            now=time.time(),
        )
        assert request.transport is not None
        peer = request.transport.get_extra_info("peername")
        self.seen.append(Seen(dict(request.headers), json.loads(raw), ok, tuple(peer)))
        if not ok:
            return web.json_response({"error": "bad signature"}, status=401)
        if self.hang:
            await self.release.wait()
        if self.status != 200:
            return web.json_response({"error": "not now"}, status=self.status)
        return web.json_response({"message_id": f"prov-{len(self.seen)}"})


@pytest.fixture
async def provider() -> AsyncIterator[tuple[Provider, str]]:
    receiver = Provider()
    app = web.Application()
    app.router.add_post("/send", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield receiver, str(server.make_url("/send"))
    receiver.release.set()  # let a hanging handler finish so the server can shut down
    await server.close()


@pytest.fixture
async def provider_channel(provider: tuple[Provider, str]) -> AsyncIterator[HttpProviderChannel]:
    channel = HttpProviderChannel(provider[1], secret=SECRET, timeout=1.0)
    yield channel
    await channel.close()


async def test_provider_gets_signed_json_with_an_idempotency_key(
    provider: tuple[Provider, str], provider_channel: HttpProviderChannel
) -> None:
    receiver, _ = provider
    port: Channel = provider_channel
    first = await port.send(sms(1))
    await port.send(sms(2))

    assert first.provider_message_id == "prov-1"
    seen = receiver.seen[0]
    assert seen.signature_ok
    assert seen.headers["Idempotency-Key"] == "sms-1"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Haetae-Signature"].startswith("sha256=")
    assert seen.body == {
        "id": "sms-1",
        "channel": "sms",
        "to": "+821012345678",
        "title": "해태",
        "body": "[해태] 인증번호 000001",
        "type": "sms",
    }
    assert receiver.seen[1].peer == seen.peer  # keep-alive: the second send reused it


async def test_provider_refuses_a_wrong_signature_for_good(
    provider: tuple[Provider, str],
) -> None:
    receiver, url = provider
    channel = HttpProviderChannel(url, secret=b"not-the-secret", timeout=1.0)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sms(1))
    await channel.close()
    assert caught.value.retryable is False
    assert "401" in caught.value.reason
    assert receiver.seen[0].signature_ok is False


@pytest.mark.parametrize("status", [503, 429])
async def test_provider_busy_is_retryable(
    provider: tuple[Provider, str], provider_channel: HttpProviderChannel, status: int
) -> None:
    provider[0].status = status
    with pytest.raises(DeliveryError) as caught:
        await provider_channel.send(sms(1))
    assert caught.value.retryable is True
    assert str(status) in caught.value.reason


async def test_provider_bad_request_is_final(
    provider: tuple[Provider, str], provider_channel: HttpProviderChannel
) -> None:
    provider[0].status = 400
    with pytest.raises(DeliveryError) as caught:
        await provider_channel.send(sms(1))
    assert caught.value.retryable is False


async def test_provider_that_never_answers_times_out_retryably(
    provider: tuple[Provider, str],
) -> None:
    provider[0].hang = True
    channel = HttpProviderChannel(provider[1], secret=SECRET, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sms(1))
    await channel.close()
    assert caught.value.retryable is True
    assert time.monotonic() - started < 1.0


async def test_provider_unreachable_is_retryable() -> None:
    channel = HttpProviderChannel(f"http://127.0.0.1:{free_port()}/send", secret=SECRET)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sms(1))
    await channel.close()
    assert caught.value.retryable is True


async def test_provider_reconnects_when_the_server_closed_an_idle_connection() -> None:
    receiver = Provider()
    app = web.Application()
    app.router.add_post("/send", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(keepalive_timeout=0.1)  # the server drops idle connections
    channel = HttpProviderChannel(str(server.make_url("/send")), secret=SECRET, timeout=1.0)
    try:
        await channel.send(sms(1))
        await asyncio.sleep(0.4)
        await channel.send(sms(2))  # no error: sent again on a fresh connection
    finally:
        await channel.close()
        await server.close()
    assert [s.body["id"] for s in receiver.seen] == ["sms-1", "sms-2"]
    assert receiver.seen[0].peer != receiver.seen[1].peer


@pytest.fixture
async def odd_provider() -> AsyncIterator[tuple[list[tuple[str, int]], str]]:
    """Answers in the shapes a provider may use: chunked, or closing the connection."""
    peers: list[tuple[str, int]] = []

    async def chunked(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peers.append(tuple(request.transport.get_extra_info("peername")))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"message_id":')
        await response.write(b' "chunked-1"}')
        await response.write_eof()
        return response

    async def closing(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(tuple(request.transport.get_extra_info("peername")))
        return web.json_response({"message_id": "once"}, headers={"Connection": "close"})

    app = web.Application()
    app.router.add_post("/chunked", chunked)
    app.router.add_post("/closing", closing)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield peers, str(server.make_url("/"))
    await server.close()


async def test_provider_chunked_answer_is_read(
    odd_provider: tuple[list[tuple[str, int]], str],
) -> None:
    _, base = odd_provider
    channel = HttpProviderChannel(f"{base}chunked", secret=SECRET, timeout=1.0)
    results = [await channel.send(sms(n)) for n in range(2)]
    await channel.close()
    assert [r.provider_message_id for r in results] == ["chunked-1", "chunked-1"]


async def test_provider_connection_close_is_not_reused(
    odd_provider: tuple[list[tuple[str, int]], str],
) -> None:
    peers, base = odd_provider
    channel = HttpProviderChannel(f"{base}closing", secret=SECRET, timeout=1.0)
    for n in range(3):
        assert (await channel.send(sms(n))).provider_message_id == "once"
    await channel.close()
    assert len(set(peers)) == 3  # a fresh connection each time the server said "close"


async def test_provider_answer_ended_by_closing_the_connection_is_read() -> None:
    """An HTTP/1.0-style answer: no length, the body ends where the connection does."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"message_id": "eof-1"}')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    channel = HttpProviderChannel(f"http://127.0.0.1:{port}/send", secret=SECRET, timeout=1.0)
    try:
        results = [await channel.send(sms(n)) for n in range(2)]
    finally:
        await channel.close()
        server.close()
        await server.wait_closed()
    assert [r.provider_message_id for r in results] == ["eof-1", "eof-1"]


async def test_provider_connections_are_capped(provider: tuple[Provider, str]) -> None:
    receiver, url = provider
    channel = HttpProviderChannel(url, secret=SECRET, timeout=2.0, connections=2)
    await asyncio.gather(*(channel.send(sms(n)) for n in range(20)))
    await channel.close()
    assert len(receiver.seen) == 20
    assert len({s.peer for s in receiver.seen}) == 2


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_provider_over_https_checks_the_certificate(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    receiver = Provider()
    app = web.Application()
    app.router.add_post("/send", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_context)
    url = str(server.make_url("/send"))
    assert url.startswith("https://")
    trusting = HttpProviderChannel(
        url, secret=SECRET, timeout=2.0, ssl_context=ssl.create_default_context(cafile=cert_path)
    )
    distrusting = HttpProviderChannel(url, secret=SECRET, timeout=2.0)  # the system's CAs
    try:
        assert (await trusting.send(sms(1))).provider_message_id == "prov-1"
        await trusting.send(sms(2))
        with pytest.raises(DeliveryError) as caught:
            await distrusting.send(sms(3))
    finally:
        await trusting.close()
        await distrusting.close()
        await server.close()
    assert caught.value.retryable is True
    assert [s.body["id"] for s in receiver.seen] == ["sms-1", "sms-2"]
    assert receiver.seen[0].peer == receiver.seen[1].peer  # kept alive over TLS too


def test_verify_signature_rejects_stale_forged_and_garbled() -> None:
    body = b'{"id":"x"}'
    now = 1_700_000_000.0
    fresh, stale = str(int(now) - 299), str(int(now) - 301)
    assert verify_signature(SECRET, fresh, body, sign(SECRET, fresh, body), now=now)
    assert not verify_signature(SECRET, stale, body, sign(SECRET, stale, body), now=now)
    assert not verify_signature(SECRET, fresh, body + b" ", sign(SECRET, fresh, body), now=now)
    assert not verify_signature(SECRET, fresh, body, sign(b"other", fresh, body), now=now)
    assert not verify_signature(SECRET, "soon", body, sign(SECRET, "soon", body), now=now)


# --- Apprise ----------------------------------------------------------------------------


@pytest.fixture
async def json_target() -> AsyncIterator[tuple[list[dict[str, Any]], int, list[int]]]:
    """Apprise's ``json://`` target: records each POSTed payload; answers with ``status[0]``."""
    payloads: list[dict[str, Any]] = []
    status = [200]

    async def handle(request: web.Request) -> web.Response:
        payloads.append(await request.json())
        return web.Response(status=status[0])

    app = web.Application()
    app.router.add_post("/notify", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    yield payloads, server.port, status
    await server.close()


async def test_apprise_posts_to_a_json_target(
    json_target: tuple[list[dict[str, Any]], int, list[int]],
) -> None:
    payloads, port_number, _ = json_target
    channel: Channel = AppriseChannel([f"json://127.0.0.1:{port_number}/notify"])
    await channel.send(sms(7))
    await channel.close()

    assert len(payloads) == 1
    assert payloads[0]["title"] == "해태"
    assert payloads[0]["message"] == "[해태] 인증번호 000007"


async def test_apprise_failure_is_retryable(
    json_target: tuple[list[dict[str, Any]], int, list[int]],
) -> None:
    _, port_number, status = json_target
    status[0] = 500
    channel = AppriseChannel([f"json://127.0.0.1:{port_number}/notify"])
    with pytest.raises(DeliveryError) as caught:
        await channel.send(sms(1))
    assert caught.value.retryable is True


def test_apprise_refuses_an_unknown_url() -> None:
    with pytest.raises(ValueError, match="#1"):
        AppriseChannel(["nosuchscheme://whatever"])
