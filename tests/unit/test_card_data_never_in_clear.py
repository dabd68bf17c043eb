"""PCI DSS 3.3.1 / 3.5.1: after real payment flows, no card number (with or without
separators), CVC, birth date or password digits is found in the database, the logs or the
events — under both card policies, through failures, step-up, timeouts and cancels."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url

from haetae.bus import Event
from haetae.db.base import Base
from haetae.issuer_sim.cards import (
    DOMESTIC_PERSONAL_CARD,
    NO_ANSWER_CARD,
    STEP_UP_CARD,
)
from haetae.logging import configure_logging
from haetae.services import Services
from tests.helpers import auth, merchant_key, payment_body, service_key

CVC = "737"
AMEX_CID = "7319"
BIRTH = "900101"
PASSWORD = "12"
CARDS = [
    "4242424242424242",
    "5555555555554444",
    "378282246310005",
    "4000000000009995",
    "4000000000000127",
    "4000000000009987",
    STEP_UP_CARD,
    NO_ANSWER_CARD,
    DOMESTIC_PERSONAL_CARD,
    "4242424242424241",  # not Luhn-valid, typed anyway: still the customer's digits
]


def _forms(pan: str) -> list[str]:
    grouped = " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))
    return [pan, grouped, grouped.replace(" ", "-")]


def _assert_clean(text: str, where: str) -> None:
    for pan in CARDS:
        for form in _forms(pan):
            assert form not in text, f"card number {pan[:6]}… found in {where}"
    # Standalone values only: random ids and hashes (letters, digits, - and _) may contain
    # the same three digits by chance.
    for secret, name in ((CVC, "CVC"), (AMEX_CID, "CID"), (BIRTH, "birth date")):
        assert not re.search(rf"(?<![\w-]){secret}(?![\w-])", text), f"{name} found in {where}"
    assert not re.search(r'"(password_2digits|cvc)"\s*:\s*"', text), f"secret key in {where}"


async def _run_flows(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await merchant_key(services, "plain")
    _, vault_key = await merchant_key(services, "vaulted", card_policy="vault")
    ops = await service_key(services, "notify")
    for merchant in (key, vault_key):
        for pan in CARDS:
            card = {"number": " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))}
            if pan.startswith("37"):
                card["cvc"] = AMEX_CID
            elif pan.startswith("9"):
                card.update(cvc=None, birth_or_business_no=BIRTH, password_2digits=PASSWORD)
            else:
                card["cvc"] = CVC
            response = await client.post(
                "/v1/payments", json=payment_body(pan, card=card), headers=auth(merchant)
            )
            body = response.json()
            if body["status"] == "challenge_required":
                inbox = await client.get("/v1/customers/cust-1/inbox", headers=auth(ops))
                code = re.search(r"\d{6}", inbox.json()["items"][0]["body"])
                assert code is not None
                await client.post(
                    f"/v1/payments/{body['id']}/challenge",
                    json={"otp": code.group(0)},
                    headers=auth(merchant),
                )
            if body["status"] == "approved":
                await client.post(f"/v1/payments/{body['id']}/cancel", headers=auth(merchant))
        # A malformed request that still carries a card number must not leak it either.
        bad = payment_body(card={"number": "4242 4242 4242 4242", "cvc": CVC, "cvv": CVC})
        assert (
            await client.post("/v1/payments", json=bad, headers=auth(merchant))
        ).status_code == 422
    await services.reversals.wait_idle()
    await services.relay.drain()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.issuer_timeout(0.5)  # one card is never answered: its timeout is waited out
async def test_no_card_data_in_database_logs_or_events(
    client: httpx.AsyncClient,
    services: Services,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fixed step-up codes, so that a random code can never contain the CVC by chance.
    monkeypatch.setattr("haetae.payments.service.new_code", lambda: "555555")
    configure_logging("DEBUG", json=True)
    events: list[Event] = []

    async def _record(event: Event) -> None:
        events.append(event)

    services.bus.subscribe("*", "scanner", _record)
    await _run_flows(client, services)

    # Events, as delivered on the bus.
    assert events, "the flows produced no events"
    assert any(e.topic == "payment.approved" for e in events)
    _assert_clean(json.dumps([e.payload for e in events], ensure_ascii=False), "events")

    # Every row of every table, as the database returns it.
    dump: list[str] = []
    async with services.db.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(sa.select(table))).all():
                dump.append(repr(tuple(row)))
    assert any("424242******4242" in line for line in dump)
    _assert_clean("\n".join(dump), "database rows")

    # The database file itself (SQLite), WAL included: nothing hides in free pages.
    url = make_url(services.db.url)
    if url.get_backend_name() == "sqlite" and url.database:
        await services.db.dispose()
        for path in Path(url.database).parent.glob(Path(url.database).name + "*"):
            _assert_clean(path.read_bytes().decode("latin-1"), f"file {path.name}")

    # Logs: everything the platform printed.
    logs = capsys.readouterr().out
    assert "payment.finished" in logs
    _assert_clean(logs, "logs")
