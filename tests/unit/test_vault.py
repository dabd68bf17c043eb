"""The ``vault`` card policy: encrypted storage, tokens, key rotation."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap
from sqlalchemy import select
from typer.testing import CliRunner

from haetae.cli import app
from haetae.merchants.models import Merchant
from haetae.payments.models import VaultCard
from haetae.payments.vault import CardVault
from haetae.security.card_crypto import replace_key_file
from haetae.security.models import VaultKey
from haetae.services import Services
from tests.helpers import auth, merchant_key, payment_body


async def test_vault_policy_returns_a_token_and_stores_only_ciphertext(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await merchant_key(services, "subs", card_policy="vault")
    first = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    token = first.json()["card"]["token"]
    assert token.startswith("tok_")
    second = await client.post(
        "/v1/payments", json=payment_body("4242-4242-4242-4242", order_id="o2"), headers=auth(key)
    )
    assert second.json()["card"]["token"] == token  # same card, same token
    async with services.db.sessions() as session:
        card = (await session.scalars(select(VaultCard))).one()
        assert b"4242424242424242" not in card.ciphertext
        assert card.masked == "424242******4242"
        assert await services.vault.reveal(session, token) == "4242424242424242"


async def test_none_policy_keeps_no_number(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await merchant_key(services, "plain")
    response = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    assert response.json()["card"]["token"] is None
    async with services.db.sessions() as session:
        assert (await session.scalars(select(VaultCard))).all() == []


async def test_rotation_re_encrypts_every_card(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await merchant_key(services, "subs", card_policy="vault")
    tokens = []
    for number in ("4242424242424242", "5555555555554444", "378282246310005"):
        card = {"cvc": "1234"} if number.startswith("37") else {}
        r = await client.post(
            "/v1/payments", json=payment_body(number, card=card), headers=auth(key)
        )
        tokens.append(r.json()["card"]["token"])
    async with services.db.sessions() as session:
        old_key = (await session.scalars(select(VaultKey))).one()
        old_blobs = {c.token: c.ciphertext for c in (await session.scalars(select(VaultCard)))}
    progress: list[tuple[int, int]] = []
    async with services.db.transaction() as session:
        new_key_id, count = await services.vault.rotate(
            session, lambda d, t: progress.append((d, t))
        )
    assert count == 3 and progress[-1] == (3, 3)
    async with services.db.sessions() as session:
        keys = {k.id: k for k in (await session.scalars(select(VaultKey)))}
        assert keys[old_key.id].active is False and keys[old_key.id].retired_at is not None
        assert keys[new_key_id].active is True
        cards = list(await session.scalars(select(VaultCard)))
        assert {c.key_id for c in cards} == {new_key_id}
        assert all(c.ciphertext != old_blobs[c.token] for c in cards)
        assert await services.vault.reveal(session, tokens[1]) == "5555555555554444"
    # New cards after rotation use the new key.
    r = await client.post("/v1/payments", json=payment_body("3530111333300000"), headers=auth(key))
    async with services.db.sessions() as session:
        card = await session.get(VaultCard, r.json()["card"]["token"])
        assert card is not None and card.key_id == new_key_id


async def test_only_cards_that_paid_are_kept(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await merchant_key(services, "subs", card_policy="vault")
    declined = await client.post(
        "/v1/payments", json=payment_body("4000000000009995"), headers=auth(key)
    )
    assert declined.json()["status"] == "declined"
    assert declined.json()["card"]["token"] is None
    async with services.db.sessions() as session:
        assert (await session.scalars(select(VaultCard))).all() == []


async def test_another_key_does_not_change_the_card_policy(services: Services) -> None:
    merchant_id, _ = await merchant_key(services, "subs", card_policy="vault")
    again_id, _ = await merchant_key(services, "subs")  # no policy given: keep the existing
    assert again_id == merchant_id
    async with services.db.sessions() as session:
        merchant = await session.get(Merchant, merchant_id)
    assert merchant is not None and merchant.card_policy == "vault"


async def test_master_key_rewrap_keeps_every_card_readable_under_the_new_key(
    client: httpx.AsyncClient, services: Services, tmp_path: Path
) -> None:
    _, key = await merchant_key(services, "subs", card_policy="vault")
    paid = await client.post("/v1/payments", json=payment_body(), headers=auth(key))
    token = paid.json()["card"]["token"]
    new_master = os.urandom(32)
    env = {
        "HAETAE_DATABASE_URL": services.settings.effective_database_url,
        "HAETAE_DATA_DIR": str(tmp_path / "cli"),
        "HAETAE_MASTER_KEY": services.settings.master_key,
        "HAETAE_FINGERPRINT_KEY": services.settings.fingerprint_key,
    }
    args = ["vault", "rewrap", "--new-master-key", base64.b64encode(new_master).decode()]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "HAETAE_MASTER_KEY" in result.output

    old = services.card_secrets
    new = old.with_master_key(new_master)
    async with services.db.sessions() as session:
        assert await CardVault(new).reveal(session, token) == "4242424242424242"
        with pytest.raises(InvalidUnwrap):
            await CardVault(old).reveal(session, token)

    bad = await asyncio.to_thread(
        CliRunner().invoke, app, ["vault", "rewrap", "--new-master-key", "c2hvcnQ="], env=env
    )
    assert bad.exit_code != 0  # 5 bytes is not a master key


def test_key_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text("old")
    replace_key_file(path, b"k" * 32)
    assert base64.b64decode(path.read_text()) == b"k" * 32
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not path.with_suffix(".new").exists()
