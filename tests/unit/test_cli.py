"""The `haetae` command: keys are printed once, as the last line, and stored as hashes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from haetae.cli import app
from haetae.security.models import ApiKey
from haetae.services import Services


@pytest.fixture
def cli_env(settings: object, database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"HAETAE_DATABASE_URL": database_url, "HAETAE_DATA_DIR": str(tmp_path / "cli")}


def _create(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, ["keys", "create", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


async def test_merchant_and_service_keys_work_and_are_stored_hashed(
    cli_env: dict[str, str], client: httpx.AsyncClient, services: Services
) -> None:
    # The CLI runs its own event loop, as it does from a shell: give it a thread.
    merchant = await asyncio.to_thread(_create, cli_env, "--merchant", "cli-shop")
    service = await asyncio.to_thread(
        _create, cli_env, "--service", "fds", "--scope", "risk", "--scope", "notify"
    )
    assert merchant.startswith("hae_key_") and service.startswith("hae_key_")

    body = {
        "amount": 1000,
        "currency": "KRW",
        "order_id": "o",
        "customer_id": "c",
        "card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2031, "cvc": "123"},
    }
    paid = await client.post(
        "/v1/payments", json=body, headers={"Authorization": f"Bearer {merchant}"}
    )
    assert paid.status_code == 201, paid.text
    inbox = await client.get(
        "/v1/customers/c/inbox", headers={"Authorization": f"Bearer {service}"}
    )
    assert inbox.status_code == 200
    no_scope = await client.get(
        f"/v1/payments/{paid.json()['id']}", headers={"Authorization": f"Bearer {service}"}
    )
    assert no_scope.status_code == 403

    async with services.db.sessions() as session:
        rows = list(await session.scalars(select(ApiKey)))
    stored = " ".join(f"{r.id} {r.secret_hash}" for r in rows)
    for key in (merchant, service):
        secret = key.split("_", 3)[3]  # hae_key_<id>_<secret>; the secret may hold "_"
        assert len(secret) >= 40 and secret not in stored and key not in stored
    assert {tuple(r.scopes) for r in rows} == {("payments",), ("notify", "risk")}


def test_bad_invocations_are_refused(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    for args in (
        ["keys", "create"],
        ["keys", "create", "--service", "x"],
        ["keys", "create", "--service", "x", "--scope", "everything"],
        ["keys", "create", "--merchant", "m", "--card-policy", "sometimes"],
    ):
        result = runner.invoke(app, args, env=cli_env)
        assert result.exit_code != 0, args
