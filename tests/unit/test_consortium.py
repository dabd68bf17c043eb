"""Joint response with affiliates: the signed envelope, the receiving endpoint (signature,
sender, recipient, time window, replays answered with the same acknowledgement and applied
once, the linked-case hook), the sender (retries until the affiliate is up and
acknowledges, safe claiming by several workers), and two real Haetae instances on loopback
sharing a report that then blocks a transfer."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import FastAPI
from sqlalchemy import func, select
from typer.testing import CliRunner

from haetae.app import create_app
from haetae.bus.models import OutboxEvent
from haetae.cli import app as cli_app
from haetae.config import ConsortiumPeerSettings, IssuerSettings, Settings
from haetae.consortium import envelope
from haetae.consortium.envelope import EnvelopeError, seal, seal_ack, verify_ack, verify_message
from haetae.consortium.models import OutgoingShare, ReceivedShare
from haetae.consortium.schemas import FraudReportPayload
from haetae.consortium.sender import ConsortiumSender
from haetae.consortium.settings import ConsortiumSettings
from haetae.db.base import new_id, utcnow
from haetae.db.migrate import upgrade
from haetae.issuer_sim.server import IssuerSimulator
from haetae.risk.rules.models import RiskList
from haetae.services import Services, build_services
from tests.conftest import Clock
from tests.helpers import auth, free_port, service_key

US, PEER = "090", "088"
WINDOW = timedelta(minutes=5)
REPORT: dict[str, Any] = {
    "case_id": "FR-20261123-ABC123",
    "kind": "voice_phishing",
    "accounts": [{"bank_code": "088", "account_number": "110-222-333333"}],
    "devices": ["dev-evil"],
    "phones": ["010-9876-5432"],
    "amount": 5_000_000,
    "currency": "KRW",
    "occurred_at": "2026-11-23T12:00:00+00:00",
}


def b64_seed(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.private_bytes_raw()).decode()


def b64_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return envelope.encode_key(public)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def our_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def peer_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def peer_port() -> int:
    return free_port()


@pytest.fixture
def settings(
    settings: Settings, our_key: Ed25519PrivateKey, peer_key: Ed25519PrivateKey, peer_port: int
) -> Settings:
    """The shared settings, as institution 090 with one affiliate, 088, on ``peer_port``
    (nothing listens there until a test starts the fake affiliate)."""
    return settings.model_copy(
        update={
            "institution_code": US,
            "consortium_private_key": b64_seed(our_key),
            "consortium_peers": [
                ConsortiumPeerSettings(
                    code=PEER, url=f"http://127.0.0.1:{peer_port}/", public_key=b64_public(peer_key)
                )
            ],
        }
    )


@pytest.fixture
async def platform(
    settings: Settings, clock: Clock
) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    """The platform and a client on its app; background loops not started (tests drain)."""
    services = build_services(settings, clock=clock)
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://haetae.test") as client:
        yield services, client
    await services.stop()


def from_peer(
    key: Ed25519PrivateKey,
    *,
    message_id: str | None = None,
    payload: dict[str, Any] | None = None,
    signed_at: datetime | None = None,
    sender: str = PEER,
    recipient: str = US,
) -> dict[str, Any]:
    return seal(
        message_id=message_id or new_id("cm"),
        sender=sender,
        recipient=recipient,
        kind="fraud_report",
        payload=REPORT if payload is None else payload,
        signed_at=signed_at or utcnow(),
        key=key,
    )


async def post(client: httpx.AsyncClient, document: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/consortium/messages", json=document, headers={"Accept-Language": "en"}
    )


async def count(services: Services, query: Any) -> int:
    async with services.db.sessions() as session:
        return int(await session.scalar(query) or 0)


async def list_values(services: Services, name: str) -> set[str]:
    return set((await services.rules.get_list(name)).values)


# --- the envelope -------------------------------------------------------------------------


def test_a_signed_message_verifies_however_its_json_is_spaced() -> None:
    key = Ed25519PrivateKey.generate()
    now = datetime(2026, 11, 23, 13, 0, 0, 123456, tzinfo=UTC)
    sealed = from_peer(key, message_id="cm_1", signed_at=now)
    assert sealed["signed_at"] == "2026-11-23T13:00:00.123Z"
    # What travels is JSON: re-spaced, keys reordered, non-ASCII escaped or not.
    wire = json.dumps(dict(reversed(list(sealed.items()))), indent=2, ensure_ascii=True)
    message = verify_message(
        json.loads(wire), keys={PEER: key.public_key()}, us=US, now=now, window=WINDOW
    )
    assert (message.id, message.sender, message.recipient, message.kind) == (
        "cm_1",
        PEER,
        US,
        "fraud_report",
    )
    assert message.payload == REPORT
    assert message.signed_at == now.replace(microsecond=123000)
    # The canonical form: sorted keys, compact, UTF-8.
    assert envelope.canonical({"b": "해태", "a": [1, None]}) == '{"a":[1,null],"b":"해태"}'.encode()


def _refused(document: dict[str, Any], key: Ed25519PublicKey, **overrides: Any) -> EnvelopeError:
    options: dict[str, Any] = {
        "keys": {PEER: key},
        "us": US,
        "now": utcnow(),
        "window": WINDOW,
        **overrides,
    }
    with pytest.raises(EnvelopeError) as refused:
        verify_message(document, **options)
    return refused.value


def test_tampering_an_unknown_sender_a_wrong_recipient_and_age_are_refused() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    good = from_peer(key)

    tampered = {**good, "payload": {**REPORT, "amount": 1}}
    assert (_refused(tampered, public).code, _refused(tampered, public).field) == (
        envelope.SIGNATURE_INVALID,
        "sig",
    )
    other_key = from_peer(Ed25519PrivateKey.generate())
    assert _refused(other_key, public).field == "sig"
    assert _refused({**good, "sig": "not base64!"}, public).field == "sig"
    # The signature covers the envelope too, not just the payload.
    assert _refused({**good, "recipient": "004"}, public).code == envelope.SIGNATURE_INVALID

    stranger = from_peer(key, sender="081")
    error = _refused(stranger, public)
    assert (error.code, error.field) == (envelope.SENDER_UNKNOWN, "sender")

    misdirected = from_peer(key, recipient="004")
    error = _refused(misdirected, public)
    assert (error.code, error.field) == (envelope.WRONG_RECIPIENT, "recipient")

    for offset in (timedelta(minutes=-6), timedelta(minutes=6)):  # too old, or too far ahead
        error = _refused(from_peer(key, signed_at=utcnow() + offset), public)
        assert (error.code, error.field) == (envelope.EXPIRED, "signed_at")
    verify_message(
        from_peer(key, signed_at=utcnow() - timedelta(minutes=4)),
        keys={PEER: public},
        us=US,
        now=utcnow(),
        window=WINDOW,
    )

    naive = envelope.sign({**good, "signed_at": "2026-11-23T13:00:00"}, key)
    assert _refused(naive, public).field == "signed_at"
    newer = envelope.sign({**good, "v": 2}, key)
    assert (_refused(newer, public).code, _refused(newer, public).field) == (envelope.INVALID, "v")


def test_an_acknowledgement_is_checked_against_the_peer_and_the_message() -> None:
    key = Ed25519PrivateKey.generate()
    ack = seal_ack(message_id="cm_1", sender=PEER, recipient=US, signed_at=utcnow(), key=key)
    checked = verify_ack(ack, key=key.public_key(), peer=PEER, us=US, message_id="cm_1")
    assert checked.message_id == "cm_1"
    for wrong in (
        {"message_id": "cm_2"},
        {"peer": "081"},
        {"us": "004"},
        {"key": Ed25519PrivateKey.generate().public_key()},
    ):
        options: dict[str, Any] = {
            "key": key.public_key(),
            "peer": PEER,
            "us": US,
            "message_id": "cm_1",
            **wrong,
        }
        with pytest.raises(EnvelopeError):
            verify_ack(ack, **options)


# --- receiving ----------------------------------------------------------------------------


async def test_a_shared_report_is_applied_once_and_a_replay_gets_the_same_ack(
    platform: tuple[Services, httpx.AsyncClient], clock: Clock, peer_key: Ed25519PrivateKey
) -> None:
    services, client = platform
    await services.rules.put_list("mule_accounts", [])
    await services.rules.save(
        "shared-mule", "block if payee.account in @mule_accounts", author="analyst"
    )
    opened: list[ReceivedShare] = []

    async def open_case(share: ReceivedShare) -> str:
        opened.append(share)
        return "FR-20261123-LINKED"

    services.consortium.on_fraud_report = open_case
    clock.fixed = utcnow()
    message = from_peer(peer_key, signed_at=clock.fixed - timedelta(seconds=30))

    first = await post(client, message)
    assert first.status_code == 200, first.text
    ack = first.json()
    checked = verify_ack(
        ack,
        key=services.consortium.settings.public_key,
        peer=US,
        us=PEER,
        message_id=message["id"],
    )
    assert checked.signed_at == envelope.to_millisecond(clock.fixed)

    assert await list_values(services, "mule_accounts") == {"110-222-333333", "110222333333"}
    assert await list_values(services, "mule_devices") == {"dev-evil"}
    assert await list_values(services, "reported_phones") == {"010-9876-5432"}
    # In force at once: the rule book was reloaded after the commit.
    hits = services.rules.evaluate("transfer", {"payee.account": "110222333333"})
    assert [h.name for h in hits] == ["shared-mule"]
    async with services.db.sessions() as session:
        share = await session.get(ReceivedShare, (PEER, message["id"]))
        mule_list = await session.get(RiskList, "mule_accounts")
    assert share is not None and share.case_id == "FR-20261123-LINKED"
    assert mule_list is not None
    revision = mule_list.revision
    assert share.payload == REPORT and [s.message_id for s in opened] == [message["id"]]

    # The same message again (its acknowledgement was lost), and the same id signed anew:
    # the same acknowledgement, byte for byte, and nothing applied twice.
    clock.fixed += timedelta(minutes=1)
    again = await post(client, message)
    resigned = envelope.reseal(message, clock.fixed, peer_key)
    third = await post(client, resigned)
    assert again.status_code == third.status_code == 200
    assert again.content == first.content == third.content
    assert len(opened) == 1
    assert await count(services, select(func.count()).select_from(ReceivedShare)) == 1
    topic = OutboxEvent.topic == "consortium.received"
    assert await count(services, select(func.count()).select_from(OutboxEvent).where(topic)) == 1
    async with services.db.sessions() as session:
        mule_list = await session.get(RiskList, "mule_accounts", populate_existing=True)
    assert mule_list is not None and mule_list.revision == revision

    # Past the window, the old message is refused by its time alone.
    clock.fixed += timedelta(minutes=5)
    late = await post(client, message)
    assert late.status_code == 401
    assert (late.json()["error"]["code"], late.json()["error"]["field"]) == (
        "consortium_message_expired",
        "signed_at",
    )


async def test_bad_messages_get_a_clear_error_naming_the_field(
    platform: tuple[Services, httpx.AsyncClient], clock: Clock, peer_key: Ed25519PrivateKey
) -> None:
    services, client = platform
    good = from_peer(peer_key)
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        (
            {**good, "payload": {**REPORT, "devices": ["someone-else"]}},
            401,
            "consortium_signature_invalid",
            "sig",
        ),
        (from_peer(Ed25519PrivateKey.generate()), 401, "consortium_signature_invalid", "sig"),
        (from_peer(peer_key, sender="081"), 401, "consortium_sender_unknown", "sender"),
        (from_peer(peer_key, recipient="004"), 422, "consortium_wrong_recipient", "recipient"),
        (
            from_peer(peer_key, signed_at=utcnow() - timedelta(minutes=10)),
            401,
            "consortium_message_expired",
            "signed_at",
        ),
        (
            from_peer(
                peer_key,
                payload={**REPORT, "accounts": [{"bank_code": "088", "account_number": "x"}]},
            ),
            422,
            "consortium_message_invalid",
            "payload.accounts.0.account_number",
        ),
        (
            from_peer(peer_key, payload={**REPORT, "amount": -1}),
            422,
            "consortium_message_invalid",
            "payload.amount",
        ),
        ({k: v for k, v in good.items() if k != "sig"}, 422, "consortium_message_invalid", "sig"),
        ({"sender": PEER}, 422, "consortium_message_invalid", "sig"),
    ]
    for document, status, code, field_name in cases:
        response = await post(client, document)
        assert response.status_code == status, (field_name, response.text)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == (code, field_name), error
        assert field_name in error["message"]
    not_an_object = await client.post("/v1/consortium/messages", json=[1, 2])
    assert not_an_object.status_code == 422
    assert await count(services, select(func.count()).select_from(ReceivedShare)) == 0
    async with services.db.sessions() as session:
        assert await session.get(RiskList, "mule_devices") is None


async def test_a_failed_linked_case_is_retried_by_the_senders_repeat(
    platform: tuple[Services, httpx.AsyncClient], peer_key: Ed25519PrivateKey
) -> None:
    services, client = platform
    calls: list[str] = []

    async def flaky(share: ReceivedShare) -> str:
        calls.append(share.message_id)
        if len(calls) == 1:
            raise RuntimeError("cases database unavailable")
        return "FR-20261123-SECOND"

    services.consortium.on_fraud_report = flaky
    message = from_peer(peer_key)
    first = await post(client, message)
    assert first.status_code == 503 and first.json()["error"]["retryable"] is True
    # The lists are in force already; the repeat only opens the case.
    assert "110222333333" in await list_values(services, "mule_accounts")
    second = await post(client, message)
    assert second.status_code == 200
    assert len(calls) == 2
    async with services.db.sessions() as session:
        share = await session.get(ReceivedShare, (PEER, message["id"]))
    assert share is not None and share.case_id == "FR-20261123-SECOND"
    assert (await post(client, message)).content == second.content
    assert len(calls) == 2  # linked now: the hook is not asked again


# --- sending ------------------------------------------------------------------------------


@dataclass
class FakePeer:
    """Institution 088's endpoint, enough of it: checks our message and acknowledges."""

    key: Ed25519PrivateKey
    ours: Ed25519PublicKey
    port: int
    answers: list[str] = field(default_factory=list)  # "500" or "bad_ack"; then "ack"
    received: list[dict[str, Any]] = field(default_factory=list)


@asynccontextmanager
async def running(peer: FakePeer) -> AsyncIterator[FakePeer]:
    async def messages(request: web.Request) -> web.Response:
        document = await request.json()
        try:
            message = verify_message(
                document, keys={US: peer.ours}, us=PEER, now=utcnow(), window=WINDOW
            )
        except EnvelopeError as error:
            return web.json_response({"error": {"code": error.code}}, status=401)
        peer.received.append(document)
        answer = peer.answers.pop(0) if peer.answers else "ack"
        if answer == "500":
            return web.json_response({"error": {"code": "internal_error"}}, status=500)
        signer = Ed25519PrivateKey.generate() if answer == "bad_ack" else peer.key
        ack = seal_ack(
            message_id=message.id, sender=PEER, recipient=US, signed_at=utcnow(), key=signer
        )
        return web.json_response(ack)

    app = web.Application()
    app.router.add_post("/v1/consortium/messages", messages)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", peer.port).start()
    try:
        yield peer
    finally:
        await runner.cleanup()


@pytest.fixture
def peer(peer_key: Ed25519PrivateKey, our_key: Ed25519PrivateKey, peer_port: int) -> FakePeer:
    return FakePeer(peer_key, our_key.public_key(), peer_port)


async def outgoing(services: Services, message_id: str) -> OutgoingShare:
    async with services.db.sessions() as session:
        row = await session.get(OutgoingShare, message_id)
    assert row is not None
    return row


async def test_the_sender_retries_until_the_peer_is_up_and_acknowledges(
    platform: tuple[Services, httpx.AsyncClient], clock: Clock, peer: FakePeer
) -> None:
    services, _ = platform
    sender = services.consortium.sender
    start = clock.fixed = utcnow()
    async with services.db.transaction() as session:
        ids = await services.consortium.share_in(session, kind="fraud_report", payload=REPORT)
    [message_id] = ids

    assert await sender.drain() == 1  # nobody listens on the peer's port yet
    row = await outgoing(services, message_id)
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "pending",
        1,
        start + timedelta(seconds=1),
    )
    assert row.last_error is not None and "ConnectError" in row.last_error
    assert await sender.drain() == 0  # not due again yet

    clock.fixed = start + timedelta(seconds=1)
    assert await sender.drain() == 1
    row = await outgoing(services, message_id)
    assert (row.attempts, row.next_attempt_at) == (2, clock.fixed + timedelta(seconds=2))

    async with running(peer):
        peer.answers = ["500", "bad_ack"]
        clock.fixed += timedelta(seconds=2)
        await sender.drain()
        row = await outgoing(services, message_id)
        assert row.last_error == "HTTP 500: internal_error"
        assert row.next_attempt_at == clock.fixed + timedelta(seconds=4)

        clock.fixed += timedelta(seconds=4)
        await sender.drain()
        row = await outgoing(services, message_id)
        assert row.status == "pending" and row.last_error is not None
        assert row.last_error.startswith("acknowledgement refused: sig")

        clock.fixed += timedelta(seconds=8)
        assert await sender.drain() == 1
    row = await outgoing(services, message_id)
    assert (row.status, row.attempts, row.acknowledged_at, row.last_error) == (
        "acknowledged",
        5,
        clock.fixed,
        None,
    )
    assert len(peer.received) == 3 and {m["id"] for m in peer.received} == {message_id}
    # Each attempt was signed when it was sent; the payload never changed.
    last = peer.received[-1]
    assert last["signed_at"] == envelope.format_time(clock.fixed)
    assert json.loads(row.body) == last
    assert FraudReportPayload.model_validate(last["payload"]) == FraudReportPayload.model_validate(
        REPORT
    )
    clock.fixed += timedelta(hours=1)
    assert await sender.drain() == 0  # acknowledged: never sent again


async def test_backoff_doubles_up_to_ten_minutes_and_repeats_for_ever(
    platform: tuple[Services, httpx.AsyncClient], clock: Clock
) -> None:
    services, _ = platform
    sender = services.consortium.sender
    delays = [sender._backoff(n).total_seconds() for n in (1, 2, 3, 10, 11, 1000)]
    assert delays == [1, 2, 4, 512, 600, 600]
    clock.fixed = utcnow()
    async with services.db.transaction() as session:
        [message_id] = await services.consortium.share_in(
            session, kind="fraud_report", payload=REPORT
        )
    for _ in range(15):
        assert await sender.drain() == 1
        clock.fixed += timedelta(minutes=10)
    row = await outgoing(services, message_id)
    assert (row.status, row.attempts) == ("pending", 15)


async def test_a_share_commits_or_rolls_back_with_the_callers_transaction(
    platform: tuple[Services, httpx.AsyncClient],
) -> None:
    services, _ = platform
    with pytest.raises(RuntimeError):
        async with services.db.transaction() as session:
            await services.consortium.share_in(session, kind="fraud_report", payload=REPORT)
            raise RuntimeError("the case failed")
    assert await count(services, select(func.count()).select_from(OutgoingShare)) == 0
    # A payload the affiliates would refuse fails the caller at once, not for ever later.
    with pytest.raises(ValueError, match="account_number"):
        async with services.db.transaction() as session:
            await services.consortium.share_in(
                session,
                kind="fraud_report",
                payload={**REPORT, "accounts": [{"bank_code": "088", "account_number": "?"}]},
            )
    async with services.db.transaction() as session:
        await services.consortium.share_fraud_report(session, REPORT)
    assert await count(services, select(func.count()).select_from(OutgoingShare)) == 1


async def test_two_workers_never_post_the_same_message(
    platform: tuple[Services, httpx.AsyncClient], clock: Clock, peer: FakePeer
) -> None:
    services, _ = platform
    settings = services.consortium.settings
    workers = [ConsortiumSender(services.db, settings, clock=clock) for _ in range(2)]
    async with services.db.transaction() as session:
        for n in range(40):
            await services.consortium.share_in(
                session, kind="fraud_report", payload={**REPORT, "case_id": f"FR-{n}"}
            )
    try:
        async with running(peer):
            await asyncio.gather(*(worker.drain() for worker in workers))
    finally:
        for worker in workers:
            await worker.close()
    ids = [m["id"] for m in peer.received]
    assert len(ids) == len(set(ids)) == 40
    acknowledged = OutgoingShare.status == "acknowledged"
    assert (
        await count(services, select(func.count()).select_from(OutgoingShare).where(acknowledged))
        == 40
    )


# --- settings and the CLI -----------------------------------------------------------------


def test_peers_come_from_the_environment_and_bad_keys_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    peer = Ed25519PrivateKey.generate()
    monkeypatch.setenv("HAETAE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HAETAE_INSTITUTION_CODE", "088")
    monkeypatch.setenv(
        "HAETAE_CONSORTIUM_PEERS",
        json.dumps([{"code": "090", "url": "http://127.0.0.1:9/", "public_key": b64_public(peer)}]),
    )
    built = ConsortiumSettings.from_settings(Settings())
    assert built.institution_code == "088"
    assert built.peers["090"].messages_url == "http://127.0.0.1:9/v1/consortium/messages"
    assert b64_public(built.peers["090"].public_key) == b64_public(peer)
    key_file = tmp_path / "consortium.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert ConsortiumSettings.from_settings(Settings()).public_key_b64 == built.public_key_b64

    monkeypatch.setenv(
        "HAETAE_CONSORTIUM_PEERS",
        json.dumps([{"code": "090", "url": "http://127.0.0.1:9", "public_key": "c2hvcnQ="}]),
    )
    with pytest.raises(ValueError, match="HAETAE_CONSORTIUM_PEERS: public_key of 090"):
        ConsortiumSettings.from_settings(Settings())
    monkeypatch.setenv("HAETAE_CONSORTIUM_PEERS", "[]")
    monkeypatch.setenv("HAETAE_CONSORTIUM_PRIVATE_KEY", "bm90IGEga2V5")
    with pytest.raises(ValueError, match="HAETAE_CONSORTIUM_PRIVATE_KEY"):
        ConsortiumSettings.from_settings(Settings())


def test_the_cli_prints_the_public_key_the_affiliates_configure(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"HAETAE_DATA_DIR": str(tmp_path)}
    first = runner.invoke(cli_app, ["consortium", "key"], env=env)
    assert first.exit_code == 0, first.output
    printed = first.stdout.strip()
    stored = envelope.decode_private_key((tmp_path / "consortium.key").read_text())
    assert printed == b64_public(stored)
    assert runner.invoke(cli_app, ["consortium", "key"], env=env).stdout.strip() == printed

    seed = Ed25519PrivateKey.generate()
    configured = runner.invoke(
        cli_app, ["consortium", "key"], env={**env, "HAETAE_CONSORTIUM_PRIVATE_KEY": b64_seed(seed)}
    )
    assert configured.stdout.strip() == b64_public(seed)


# --- two institutions ---------------------------------------------------------------------


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(app: FastAPI, sock: socket.socket) -> AsyncIterator[None]:
    """The app under uvicorn on ``sock`` (lifespan on: the platform's loops run)."""
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def _wait_for(check: Callable[[], Awaitable[bool]], *, seconds: float = 15.0) -> None:
    """Poll ``check`` (the other process's database) until it holds."""
    async with asyncio.timeout(seconds):
        for _ in itertools.count():
            if await check():
                return
            await asyncio.sleep(0.05)


async def _two_institutions(
    tmp_path: Path, issuer_sim: IssuerSimulator
) -> tuple[Services, Services, dict[str, socket.socket], dict[str, str]]:
    """Institutions 090 (A) and 088 (B), each with its own database and key, each the
    other's configured peer, with their listening sockets and base URLs."""
    keys = {US: Ed25519PrivateKey.generate(), PEER: Ed25519PrivateKey.generate()}
    sockets = {US: _listening_socket(), PEER: _listening_socket()}
    urls = {code: f"http://127.0.0.1:{s.getsockname()[1]}" for code, s in sockets.items()}
    # Each institution its own database: one migrated SQLite file, copied for the other.
    migrated = tmp_path / "migrated.db"
    await asyncio.to_thread(upgrade, f"sqlite:///{migrated}")

    def settings_for(code: str, other: str) -> Settings:
        data = tmp_path / code
        data.mkdir()
        shutil.copyfile(migrated, data / "haetae.db")
        return Settings(
            data_dir=data,
            database_url=f"sqlite:///{data / 'haetae.db'}",
            master_key=base64.b64encode(os.urandom(32)).decode(),
            fingerprint_key=base64.b64encode(os.urandom(32)).decode(),
            issuers=[IssuerSettings(name="sim", port=issuer_sim.port, timeout_seconds=0.5)],
            institution_code=code,
            consortium_private_key=b64_seed(keys[code]),
            consortium_peers=[
                ConsortiumPeerSettings(
                    code=other, url=urls[other], public_key=b64_public(keys[other])
                )
            ],
            consortium_poll_seconds=0.1,
        )

    a = build_services(settings_for(US, PEER))
    b = build_services(settings_for(PEER, US))
    return a, b, sockets, urls


async def test_two_institutions_share_a_report_and_the_affiliate_blocks_the_transfer(
    tmp_path: Path, issuer_sim: IssuerSimulator
) -> None:
    a, b, sockets, urls = await _two_institutions(tmp_path, issuer_sim)
    async with (
        serving(create_app(a.settings, a), sockets[US]),
        serving(create_app(b.settings, b), sockets[PEER]),
        httpx.AsyncClient(base_url=urls[PEER], trust_env=False) as at_b,
    ):
        # B's analysts block transfers to accounts on the shared list.
        risk = auth(await service_key(b, "risk"))
        made = await at_b.put("/v1/risk/lists/mule_accounts", json={"values": []}, headers=risk)
        assert made.status_code == 200, made.text
        rule = await at_b.post(
            "/v1/risk/rules",
            json={
                "name": "shared-mule-account",
                "rule": "block if payee.account in @mule_accounts",
            },
            headers=risk,
        )
        assert rule.status_code == 201, rule.text

        # A's case shares the account it found; A's sender delivers it to B.
        async with a.db.transaction() as session:
            [message_id] = await a.consortium.share_in(session, kind="fraud_report", payload=REPORT)

        async def acknowledged() -> bool:
            async with a.db.sessions() as session:
                row = await session.get(OutgoingShare, message_id)
            return row is not None and row.status == "acknowledged"

        await _wait_for(acknowledged)
        async with b.db.sessions() as session:
            share = await session.get(ReceivedShare, (US, message_id))
        assert share is not None and share.payload["accounts"] == REPORT["accounts"]

        async def evaluate(account_number: str) -> dict[str, Any]:
            response = await at_b.post(
                "/v1/risk/evaluate",
                json={
                    "kind": "transfer",
                    "customer_id": "c-1",
                    "occurred_at": utcnow().isoformat(),
                    "amount": 300_000,
                    "payee": {"bank_code": PEER, "account_number": account_number},
                },
                headers=risk,
            )
            assert response.status_code == 200, response.text
            return dict(response.json())

        blocked = await evaluate("110-222-333333")
        assert blocked["decision"] == "block"
        # B's own rule; and the linked case B opened added its protection rules.
        assert "shared-mule-account" in [h["name"] for h in blocked["rule_hits"]]
        assert (await evaluate("110222333333"))["decision"] == "block"  # digits only, too
        assert (await evaluate("110-222-444444"))["decision"] == "allow"


async def test_a_report_at_one_institution_suspends_the_account_at_the_other(
    tmp_path: Path, issuer_sim: IssuerSimulator
) -> None:
    """The joint response end to end: a customer reports at A (090) that the money went to
    an account at B (088). A asks for the suspension; B receives the signed share, opens a
    linked case that suspends the account held there, and blocks the next transfer to it."""
    a, b, sockets, urls = await _two_institutions(tmp_path, issuer_sim)
    async with (
        serving(create_app(a.settings, a), sockets[US]),
        serving(create_app(b.settings, b), sockets[PEER]),
        httpx.AsyncClient(base_url=urls[US], trust_env=False) as at_a,
        httpx.AsyncClient(base_url=urls[PEER], trust_env=False) as at_b,
    ):
        reported = await at_a.post(
            "/v1/fraud-reports",
            json={
                "kind": "voice_phishing",
                "reporter": {"customer_id": "c-7"},
                "victim": {"customer_id": "c-7"},
                "suspect_accounts": [{"bank_code": PEER, "account_number": "110-777-000001"}],
                "amount": 2_000_000,
            },
            headers=auth(await service_key(a, "cases")),
        )
        assert reported.status_code == 201, reported.text
        asked = [x for x in reported.json()["actions"] if x["type"] == "suspension_request"]
        assert [x["target"] for x in asked] == [f"{PEER}:110-777-000001"]
        case_at_a = reported.json()["case_id"]

        async def linked_case() -> bool:
            async with b.db.sessions() as session:
                share = await session.scalar(select(ReceivedShare))
            return share is not None and share.case_id is not None

        await _wait_for(linked_case)
        at_b_cases = auth(await service_key(b, "cases", "risk"))
        queue = (await at_b.get("/v1/cases", headers=at_b_cases)).json()["items"]
        assert len(queue) == 1
        case = (await at_b.get(f"/v1/cases/{queue[0]['id']}", headers=at_b_cases)).json()
        assert (case["origin_institution"], case["origin_case_id"]) == (US, case_at_a)
        suspended = [x for x in case["actions"] if x["type"] == "payment_suspension"]
        assert [(x["target"], x["status"]) for x in suspended] == [
            (f"{PEER}:110-777-000001", "active")
        ]
        transfer = await at_b.post(
            "/v1/risk/evaluate",
            json={
                "kind": "transfer",
                "customer_id": "someone-at-b",
                "occurred_at": utcnow().isoformat(),
                "amount": 500_000,
                "payee": {"bank_code": PEER, "account_number": "110777000001"},
            },
            headers=at_b_cases,
        )
        assert transfer.status_code == 200, transfer.text
        assert transfer.json()["decision"] == "block"
        assert [h["name"] for h in transfer.json()["rule_hits"]] == ["reported_account"]
