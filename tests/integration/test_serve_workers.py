"""`haetae serve --workers 2` on PostgreSQL and Redis: two API processes on one port take
payments and complete each other's step-ups; on SQLite, or without Redis, it refuses."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from haetae.issuer_sim.cards import STEP_UP_CARD
from haetae.issuer_sim.server import IssuerSimulator
from tests.helpers import auth, payment_body

pytestmark = pytest.mark.integration

_REDIS = os.environ.get("HAETAE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_URL = urlsplit(_REDIS)._replace(path="/8").geturl()  # a database of its own


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _env(database_url: str, tmp_path: Path, issuer_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "HAETAE_DATABASE_URL": database_url,
        "HAETAE_DATA_DIR": str(tmp_path / "data"),
        "HAETAE_REDIS_URL": REDIS_URL,
        "HAETAE_RATE_LIMIT_STORAGE": f"async+{REDIS_URL}",
        "HAETAE_ISSUERS": f'[{{"name": "sim", "port": {issuer_port}}}]',
        "HAETAE_FEATURE_REPLAY_DAYS": "0",
        "HAETAE_LOG_JSON": "false",
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haetae.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _new_key(env: dict[str, str], *args: str) -> str:
    made = _cli(env, "keys", "create", *args)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


@pytest.fixture
async def served(
    database_url: str, tmp_path: Path, issuer_sim: IssuerSimulator
) -> AsyncIterator[tuple[str, dict[str, str], Path]]:
    env = _env(database_url, tmp_path, issuer_sim.port)
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "haetae.cli", "serve", "--workers", "2", "--port", str(port)),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(600):
                assert server.returncode is None, log_path.read_text()
                try:
                    if (await client.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"no answer from {base}: {log_path.read_text()}")
        yield base, env, log_path
    finally:
        server.terminate()
        try:
            async with asyncio.timeout(30):
                await server.wait()
        except TimeoutError:
            server.kill()
            await server.wait()


async def test_two_api_processes_share_payments_and_step_ups(
    served: tuple[str, dict[str, str], Path],
) -> None:
    base, env, log_path = served
    merchant = await asyncio.to_thread(_new_key, env, "--merchant", "shop")
    ops = await asyncio.to_thread(_new_key, env, "--service", "ops", "--scope", "notify")
    for _ in range(100):  # both workers up (each logs its start)
        started = set(re.findall(r"Started server process \[(\d+)\]", log_path.read_text()))
        if len(started) == 2:
            break
        await asyncio.sleep(0.1)
    assert len(started) == 2, log_path.read_text()

    # Each request on a connection of its own: the kernel spreads them over the processes,
    # so a step-up is often answered by the process that did not start it.
    answers = []
    for n in range(6):
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            created = await client.post(
                "/v1/payments",
                json=payment_body(STEP_UP_CARD, order_id=f"o-{n}"),
                headers=auth(merchant),
            )
        assert created.json()["status"] == "challenge_required", created.text
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            inbox = await client.get("/v1/customers/cust-1/inbox", headers=auth(ops))
        code = re.search(r"\b(\d{6})\b", inbox.json()["items"][0]["body"])
        assert code is not None, inbox.text
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            answer = await client.post(
                f"/v1/payments/{created.json()['id']}/challenge",
                json={"otp": code.group(1)},
                headers=auth(merchant),
            )
        answers.append(answer.json()["status"])
    assert answers == ["approved"] * 6


def test_several_processes_are_refused_where_they_would_go_wrong(tmp_path: Path) -> None:
    sqlite = {**os.environ, "HAETAE_DATA_DIR": str(tmp_path), "HAETAE_DATABASE_URL": ""}
    refused = _cli(sqlite, "serve", "--workers", "2")
    assert refused.returncode == 2 and "SQLite" in refused.stdout + refused.stderr
    no_redis = {
        **sqlite,
        "HAETAE_DATABASE_URL": os.environ["HAETAE_TEST_DATABASE_URL"],
        "HAETAE_REDIS_URL": "",
    }
    refused = _cli(no_redis, "serve", "--workers", "2")
    assert refused.returncode == 2
    assert "HAETAE_REDIS_URL" in refused.stdout + refused.stderr
