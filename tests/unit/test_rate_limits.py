"""Rate limits: per API key (a leaked merchant key cannot test cards at will), and per
client address for failed authentications (a client guessing keys is locked out)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from haetae.app import create_app
from haetae.config import Settings
from haetae.errors import HaetaeError
from haetae.security.rate_limits import RateLimits, RateLimitSettings
from haetae.services import Services, build_services
from tests.conftest import Clock, stop_or_show_what_hangs
from tests.helpers import auth, merchant_key

Limited = tuple[Services, httpx.AsyncClient, httpx.AsyncClient]


@pytest.fixture
async def limited(settings: Settings, clock: Clock) -> AsyncIterator[Limited]:
    tight = settings.model_copy(
        update={"rate_limit_merchant": "3/minute", "rate_limit_failed_auth": "5/minute"}
    )
    services = build_services(tight, clock=clock)
    await services.start()
    app = create_app(tight, services)
    here = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    elsewhere = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with (
        httpx.AsyncClient(transport=here, base_url="http://haetae.test") as client,
        httpx.AsyncClient(transport=elsewhere, base_url="http://haetae.test") as other,
    ):
        yield services, client, other
    await stop_or_show_what_hangs(services.stop(), "the services")


async def test_a_key_over_its_limit_gets_429_with_retry_after(limited: Limited) -> None:
    services, client, _ = limited
    _, key = await merchant_key(services, "shop-a")
    _, other_key = await merchant_key(services, "shop-b")
    for _ in range(3):
        response = await client.get("/v1/payments/pay_unknown", headers=auth(key))
        assert response.status_code == 404  # counted all the same
    refused = await client.get("/v1/payments/pay_unknown", headers=auth(key))
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and error["retryable"] is True
    assert "3 per 1 minute" in error["message"] and "초 뒤에" in error["next_step"]
    english = await client.get(
        "/v1/payments/pay_unknown", headers=auth(key, **{"Accept-Language": "en"})
    )
    assert english.status_code == 429
    assert english.json()["error"]["message"] == "Too many requests (limit: 3 per 1 minute)."
    # Another merchant's key has a limit of its own.
    assert (
        await client.get("/v1/payments/pay_unknown", headers=auth(other_key))
    ).status_code == 404


async def test_a_client_guessing_keys_is_locked_out_even_with_a_right_key(
    limited: Limited,
) -> None:
    services, client, other = limited
    _, key = await merchant_key(services, "shop-c")
    wrong = "hae_key_00000000000000000000000000_" + "x" * 43
    for headers in [auth(wrong)] * 3 + [{}] + [auth("not-a-key")]:
        assert (await client.get("/v1/payments/pay_unknown", headers=headers)).status_code == 401
    locked = await client.get("/v1/payments/pay_unknown", headers=auth(key))
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "rate_limited"
    assert int(locked.headers["Retry-After"]) >= 1
    # Another address with the same key is not affected.
    assert (await other.get("/v1/payments/pay_unknown", headers=auth(key))).status_code == 404


async def test_a_guesser_is_refused_however_many_addresses_failed_beside_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Addresses that never failed skip the failed-key test; the memory of those that did
    is bounded. When more addresses fail at once than it holds, it is dropped and every
    address is tested again, so nobody's failures are forgotten and no sweep runs per
    failure."""
    from haetae.security import rate_limits

    monkeypatch.setattr(rate_limits, "_REMEMBERED_ADDRESSES", 4)
    limits = RateLimits(RateLimitSettings(failed_auth="2/minute"))
    for _ in range(2):
        await limits.count_failure("198.51.100.1")
    for n in range(2, 10):  # others fail once each: more than the memory holds
        await limits.count_failure(f"198.51.100.{n}")
    assert len(limits._last_failure) < 4  # bounded, not one entry per address
    with pytest.raises(HaetaeError) as refused:
        await limits.admit_client("198.51.100.1")
    assert refused.value.code == "rate_limited"
    await limits.admit_client("198.51.100.9")  # one failure of two: still heard
    await limits.admit_client("203.0.113.50")  # never failed


def test_a_malformed_limit_setting_is_named() -> None:
    with pytest.raises(ValueError, match="HAETAE_RATE_LIMIT_MERCHANT"):
        RateLimits(RateLimitSettings(merchant="lots"))
    RateLimits(RateLimitSettings(failed_auth=""))  # empty: no limit


@contextlib.contextmanager
def _serve(tmp_path: Path, trusted_proxies: str) -> Iterator[str]:
    """``haetae serve`` (uvicorn, as deployed) allowing 2 failed authentications a minute."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "HAETAE_DATA_DIR": str(tmp_path / trusted_proxies.replace("/", "_")),
        "HAETAE_DATABASE_URL": "",
        "HAETAE_RATE_LIMIT_FAILED_AUTH": "2/minute",
        "HAETAE_TRUSTED_PROXIES": trusted_proxies,
        "HAETAE_FEATURE_REPLAY_DAYS": "0",
        "HAETAE_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "haetae.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "the server exited"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def _wrong_key_from(base: str, client_address: str) -> int:
    headers = {"Authorization": "Bearer wrong", "X-Forwarded-For": client_address}
    return httpx.get(f"{base}/v1/risk/reviews", headers=headers, timeout=5).status_code


def test_behind_a_trusted_proxy_each_client_is_limited_on_its_own(tmp_path: Path) -> None:
    """The proxy here is loopback. Trusted, the X-Forwarded-For address is the client's:
    one client spends its failures, another is still heard. Not trusted, every client is the
    proxy's address, and one client's failures lock out the other too."""
    with _serve(tmp_path, "127.0.0.1") as base:
        assert [_wrong_key_from(base, "203.0.113.1") for _ in range(3)] == [401, 401, 429]
        assert _wrong_key_from(base, "203.0.113.2") == 401
    with _serve(tmp_path, "192.0.2.10") as base:
        assert [_wrong_key_from(base, "203.0.113.1") for _ in range(3)] == [401, 401, 429]
        assert _wrong_key_from(base, "203.0.113.2") == 429
