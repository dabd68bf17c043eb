"""The ISO 8583 connector against the issuer simulator, over loopback TCP."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time

import pytest
from stdnum import luhn

from haetae.config import IssuerSettings
from haetae.issuer_sim import IssuerSimulator, describe_test_cards
from haetae.issuer_sim.cards import (
    BALANCE,
    CARDS_BY_NUMBER,
    DOMESTIC_CORPORATE_CARD,
    DOMESTIC_PERSONAL_CARD,
    NO_ANSWER_CARD,
    STEP_UP_CARD,
    TEST_CARDS,
)
from haetae.payments.connectors import iso8583_codec as codec
from haetae.payments.connectors.base import (
    AuthorizationRequest,
    CardDetails,
    IssuerTimeout,
    IssuerUnreachable,
    ReversalRequest,
    StepUpResult,
)
from haetae.payments.connectors.iso8583 import Iso8583Connector, Iso8583Timeout, _StanCounter
from haetae.security.card_crypto import mask_pan

_rrns = itertools.count(1)


def make_request(
    pan: str = "4242424242424242",
    *,
    amount: int = 10_000,
    cvc: str | None = "123",
    birth: str | None = None,
    password: str | None = None,
    exp_year: int = 2099,
    authentication: StepUpResult | None = None,
) -> AuthorizationRequest:
    return AuthorizationRequest(
        card=CardDetails(
            pan=pan,
            exp_month=12,
            exp_year=exp_year,
            cvc=cvc,
            birth_or_business_no=birth,
            password_2digits=password,
        ),
        amount=amount,
        currency="KRW",
        merchant_id="mch_test",
        rrn=f"T{next(_rrns):011d}",
        transmitted_at=datetime.now(UTC),
        authentication=authentication,
    )


def settings_for(port: int, *, timeout: float = 1.0, pool_size: int = 8) -> IssuerSettings:
    return IssuerSettings(
        host="127.0.0.1",
        port=port,
        timeout_seconds=timeout,
        connect_timeout_seconds=0.5,
        pool_size=pool_size,
    )


@pytest.fixture
async def sim() -> AsyncIterator[IssuerSimulator]:
    simulator = IssuerSimulator("127.0.0.1", 0, seed=1)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def connector(sim: IssuerSimulator) -> AsyncIterator[Iso8583Connector]:
    conn = Iso8583Connector(settings_for(sim.port, timeout=0.3))
    yield conn
    await conn.close()


def test_test_cards_are_luhn_valid_and_described() -> None:
    for card in TEST_CARDS:
        assert luhn.is_valid(card.number), card.number
    described = {row["number"] for row in describe_test_cards()}
    assert {card.number for card in TEST_CARDS} <= described
    assert DOMESTIC_PERSONAL_CARD.startswith("9") and len(DOMESTIC_PERSONAL_CARD) == 16
    assert DOMESTIC_CORPORATE_CARD.startswith("9") and len(DOMESTIC_CORPORATE_CARD) == 16


@pytest.mark.parametrize(
    ("request_", "code", "additional"),
    [
        (make_request("4242424242424242"), "00", None),
        (make_request("5555555555554444"), "00", None),
        (make_request("378282246310005", cvc="1234"), "00", None),
        (make_request("3530111333300000"), "00", None),
        (make_request("6200000000000005"), "00", None),
        (make_request("4000000000009995"), "51", None),
        (make_request("4000000000006975"), "61", None),
        (make_request("4000000000000069"), "54", None),
        (make_request("4000000000000127"), "N7", "C"),
        (make_request("4000000000009987"), "41", None),
        (make_request("4000000000000119"), "91", None),
        (make_request("4000000000000002"), "05", None),
        (make_request(STEP_UP_CARD), "1A", None),
        (make_request("4111111111111111"), "14", None),  # Luhn-valid, not ours
        (make_request("4242424242424242", cvc=None), "N7", "C"),
        (make_request("4242424242424242", exp_year=2020), "54", None),
        (make_request("4242424242424242", amount=50_000_001), "61", None),
        (make_request(DOMESTIC_PERSONAL_CARD, cvc=None, birth="900101", password="12"), "00", None),
        (make_request(DOMESTIC_PERSONAL_CARD, cvc=None, birth="900102", password="12"), "N7", "B"),
        (make_request(DOMESTIC_PERSONAL_CARD, cvc=None, birth="900101", password="21"), "55", None),
        (make_request(DOMESTIC_PERSONAL_CARD, cvc=None), "N7", "B"),
        (make_request(DOMESTIC_CORPORATE_CARD, birth="1234567890", password="34"), "00", None),
        (make_request(DOMESTIC_CORPORATE_CARD, birth="1234567891", password="34"), "N7", "B"),
        (make_request(DOMESTIC_CORPORATE_CARD, birth="1234567890", password="12"), "55", None),
    ],
    ids=lambda v: v.card.pan[-4:] if isinstance(v, AuthorizationRequest) else str(v),
)
async def test_card_answers(
    sim: IssuerSimulator,
    connector: Iso8583Connector,
    request_: AuthorizationRequest,
    code: str,
    additional: str | None,
) -> None:
    reply = await connector.authorize(request_)
    assert (reply.response_code, reply.additional) == (code, additional)
    assert reply.rrn == request_.rrn
    assert (reply.approval_code is not None) == (code == "00")
    record = sim.authorizations[-1]
    assert (record.rrn, record.response_code) == (request_.rrn, code)
    assert record.masked_pan == mask_pan(request_.card.pan)
    card = CARDS_BY_NUMBER.get(request_.card.pan)
    if card is not None:
        held = request_.amount if code == "00" else 0
        assert sim.balance(card.number) == card.balance - held


async def test_balance_runs_out(sim: IssuerSimulator, connector: Iso8583Connector) -> None:
    pan = "5555555555554444"
    for _ in range(2):
        assert (
            await connector.authorize(make_request(pan, amount=50_000_000))
        ).response_code == "00"
    assert sim.balance(pan) == 0
    assert (await connector.authorize(make_request(pan, amount=1))).response_code == "51"


async def test_sequential_requests_reuse_one_connection(
    sim: IssuerSimulator, connector: Iso8583Connector
) -> None:
    for _ in range(5):
        assert (await connector.authorize(make_request())).response_code == "00"
    assert sim.connections_accepted == 1
    stans = [record.stan for record in sim.authorizations]
    assert len(set(stans)) == 5


async def test_concurrent_authorizations(sim: IssuerSimulator) -> None:
    connector = Iso8583Connector(settings_for(sim.port, pool_size=8))
    cards = ["4242424242424242", "4000000000000002", "4000000000009987", DOMESTIC_PERSONAL_CARD]
    expected = {"4242424242424242": "00", "4000000000000002": "05", "4000000000009987": "41"}
    expected[DOMESTIC_PERSONAL_CARD] = "00"
    requests = [
        make_request(cards[i % 4], amount=1_000 + i, birth="900101", password="12")
        for i in range(50)
    ]
    try:
        replies = await asyncio.gather(*(connector.authorize(r) for r in requests))
    finally:
        await connector.close()
    for request, reply in zip(requests, replies, strict=True):
        assert reply.rrn == request.rrn
        assert reply.response_code == expected[request.card.pan]
    assert len({reply.stan for reply in replies}) == 50
    assert 1 <= sim.connections_accepted <= 8
    visa_total = sum(r.amount for r in requests if r.card.pan == "4242424242424242")
    assert sim.balance("4242424242424242") == BALANCE - visa_total


async def test_slow_issuer_times_out_then_reversal_releases(sim: IssuerSimulator) -> None:
    sim.latency_ms = 300
    connector = Iso8583Connector(settings_for(sim.port, timeout=0.1))
    request = make_request(amount=7_000)
    try:
        with pytest.raises(IssuerTimeout):
            await connector.authorize(request)
        assert sim.balance("4242424242424242") == BALANCE - 7_000  # decided, reply too late
        sim.latency_ms = 0
        reply = await connector.reverse(request, reason="timeout")
    finally:
        await connector.close()
    assert reply.response_code == "00"
    assert sim.balance("4242424242424242") == BALANCE
    assert sim.connections_accepted == 2  # the timed-out connection was not reused


async def test_no_answer_card_times_out_and_is_reversed(
    sim: IssuerSimulator, connector: Iso8583Connector
) -> None:
    request = make_request(NO_ANSWER_CARD, amount=25_000)
    with pytest.raises(IssuerTimeout):
        await connector.authorize(request)
    assert sim.balance(NO_ANSWER_CARD) == BALANCE - 25_000  # approved, the reply was lost
    assert sim.authorizations[-1].answered is False
    reply = await connector.reverse(request, reason="timeout")
    assert reply.response_code == "00"
    assert reply.rrn == request.rrn
    assert sim.reversals == [request.rrn]
    assert sim.balance(NO_ANSWER_CARD) == BALANCE
    assert sim.authorizations[-1].reversed is True


async def test_reversal_without_card_number(
    sim: IssuerSimulator, connector: Iso8583Connector
) -> None:
    """What the gateway keeps is a ReversalRequest (no PAN) and the STAN from the timeout."""
    request = make_request(NO_ANSWER_CARD, amount=4_000)
    with pytest.raises(IssuerTimeout) as info:
        await connector.authorize(request)
    assert isinstance(info.value, Iso8583Timeout)
    assert info.value.stan == sim.authorizations[-1].stan
    reversal = ReversalRequest(
        rrn=request.rrn,
        amount=request.amount,
        currency=request.currency,
        merchant_id=request.merchant_id,
        original_transmitted_at=request.transmitted_at,
        stan=info.value.stan,
    )
    fresh = Iso8583Connector(settings_for(sim.port))  # e.g. after a restart: nothing in memory
    try:
        for _ in range(2):
            assert (await fresh.reverse(reversal, reason="timeout")).response_code == "00"
    finally:
        await fresh.close()
    assert sim.balance(NO_ANSWER_CARD) == BALANCE
    assert sim.reversals == [request.rrn, request.rrn]


async def test_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = Iso8583Connector(settings_for(port))
    with pytest.raises(IssuerUnreachable):
        await connector.authorize(make_request())
    with pytest.raises(IssuerUnreachable):
        await connector.reverse(make_request(), reason="cancel")
    await connector.close()


async def test_dropped_connection_is_a_timeout() -> None:
    sim = IssuerSimulator("127.0.0.1", 0, drop_rate=1.0, seed=1)
    await sim.start()
    connector = Iso8583Connector(settings_for(sim.port, timeout=2.0))
    try:
        with pytest.raises(IssuerTimeout):
            await connector.authorize(make_request())
        with pytest.raises(IssuerTimeout):
            await connector.authorize(make_request())
    finally:
        await connector.close()
        await sim.stop()
    assert sim.connections_accepted == 2
    assert [r.answered for r in sim.authorizations] == [False, False]


async def test_reversal_releases_exactly_once(
    sim: IssuerSimulator, connector: Iso8583Connector
) -> None:
    request = make_request(amount=3_000)
    assert (await connector.authorize(request)).response_code == "00"
    assert sim.balance("4242424242424242") == BALANCE - 3_000
    for _ in range(2):
        reply = await connector.reverse(request, reason="cancel")
        assert reply.response_code == "00"
    assert sim.balance("4242424242424242") == BALANCE
    assert sim.reversals == [request.rrn, request.rrn]


async def test_reversal_of_unknown_rrn_changes_nothing(
    sim: IssuerSimulator, connector: Iso8583Connector
) -> None:
    request = make_request(amount=3_000)
    assert (await connector.reverse(request, reason="timeout")).response_code == "00"
    assert sim.balance("4242424242424242") == BALANCE
    # A late original whose reversal already arrived must not hold money.
    assert (await connector.authorize(request)).response_code == "94"
    assert sim.balance("4242424242424242") == BALANCE


async def test_step_up_card(sim: IssuerSimulator, connector: Iso8583Connector) -> None:
    assert (await connector.authorize(make_request(STEP_UP_CARD))).response_code == "1A"
    authenticated = make_request(STEP_UP_CARD, authentication=StepUpResult(status="Y", eci="05"))
    reply = await connector.authorize(authenticated)
    assert reply.response_code == "00"
    assert reply.approval_code is not None


async def test_broken_idle_connection_is_replaced(
    sim: IssuerSimulator, connector: Iso8583Connector
) -> None:
    assert (await connector.authorize(make_request())).response_code == "00"
    await sim.drop_connections()
    await asyncio.sleep(0.05)  # let the connector's side see the EOF
    assert (await connector.authorize(make_request())).response_code == "00"
    assert sim.connections_accepted == 2


async def test_cancelled_request_does_not_leave_connection_in_pool(sim: IssuerSimulator) -> None:
    sim.latency_ms = 200
    connector = Iso8583Connector(settings_for(sim.port))
    try:
        task = asyncio.create_task(connector.authorize(make_request()))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        sim.latency_ms = 0
        assert (await connector.authorize(make_request())).response_code == "00"
    finally:
        await connector.close()
    assert sim.connections_accepted == 2


async def test_mismatched_reply_is_a_timeout() -> None:
    """A peer answering with someone else's STAN is confused: drop the connection."""
    accepted = 0

    async def confused(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            while True:
                fields = codec.decode_message(await codec.read_frame(reader))
                fields["11"] = "999999"
                writer.write(codec.frame(codec.build_reply(fields, "00")))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(confused, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connector = Iso8583Connector(settings_for(port))
    try:
        for _ in range(2):
            with pytest.raises(IssuerTimeout):
                await connector.authorize(make_request())
    finally:
        await connector.close()
        server.close()
        await server.wait_closed()
    assert accepted == 2


async def test_maintenance_window_answers_91() -> None:
    # 23:45 in Seoul, inside a window that spans midnight.
    clock = lambda: datetime(2024, 6, 1, 14, 45, tzinfo=UTC)  # noqa: E731
    sim = IssuerSimulator("127.0.0.1", 0, maintenance=[(time(23, 30), time(0, 30))], clock=clock)
    await sim.start()
    connector = Iso8583Connector(settings_for(sim.port))
    try:
        request = make_request()
        assert (await connector.authorize(request)).response_code == "91"
        assert (await connector.reverse(request, reason="cancel")).response_code == "91"
    finally:
        await connector.close()
        await sim.stop()
    assert sim.balance("4242424242424242") == BALANCE


async def test_close_closes_connections(sim: IssuerSimulator) -> None:
    connector = Iso8583Connector(settings_for(sim.port))
    await asyncio.gather(*(connector.authorize(make_request()) for _ in range(3)))
    assert sim.open_connections >= 1
    await connector.close()
    await asyncio.sleep(0.05)
    assert sim.open_connections == 0
    with pytest.raises(IssuerUnreachable):
        await connector.authorize(make_request())


def test_stan_counter_wraps() -> None:
    counter = _StanCounter()
    assert counter.next() == "000001"
    counter._last = 999_998
    assert [counter.next(), counter.next(), counter.next()] == ["999999", "000001", "000002"]


async def test_a_request_that_finds_no_free_connection_in_time_is_never_sent(
    sim: IssuerSimulator,
) -> None:
    """With every connection busy (one, waiting on a card the issuer never answers), the
    next request waits at most the connect timeout and fails as unreachable, unsent."""
    connector = Iso8583Connector(settings_for(sim.port, timeout=1.5, pool_size=1))
    try:
        busy = asyncio.create_task(connector.authorize(make_request(NO_ANSWER_CARD)))
        for _ in range(200):  # until the issuer has it (at most 2 s)
            if sim.authorizations:
                break
            await asyncio.sleep(0.01)
        assert sim.authorizations
        started = asyncio.get_running_loop().time()
        with pytest.raises(IssuerUnreachable):
            await connector.authorize(make_request("4242424242424242"))
        assert 0.4 < asyncio.get_running_loop().time() - started < 1.2  # connect timeout 0.5
        assert len(sim.authorizations) == 1  # the second never reached the issuer
        with pytest.raises(IssuerTimeout):
            await busy
        reply = await connector.authorize(make_request("4242424242424242"))
        assert reply.response_code == "00"  # the slot is free again
    finally:
        await connector.close()
