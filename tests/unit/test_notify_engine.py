"""The notification engine end to end: customers and preferences over the API, notices
queued with the state that causes them, and the dispatcher sending through a real SMTP
server and a real HTTP provider on loopback, with retries, fallback and status history."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from haetae.app import create_app
from haetae.config import Settings
from haetae.db.base import utcnow
from haetae.notify.channels.http_provider import verify_signature
from haetae.notify.notices import NoticeLimits, send_notice
from haetae.services import Services, build_services
from tests.conftest import Clock
from tests.helpers import auth, free_port, service_key

SECRET = b"provider-secret"
REISSUED = {
    "certificate_kind": "joint",
    "reissued_at": datetime(2026, 11, 22, 0, 30, tzinfo=UTC),
    "device_name": "Galaxy S24",
    "report_url": "https://bank.example/report",
    "contact_phone": "1599-0000",
}


@dataclass
class Receivers:
    mail: list[Any] = field(default_factory=list)
    http: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)  # path → statuses to give


class _MailHandler:
    def __init__(self, into: list[Any]) -> None:
        self.into = into

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.into.append(envelope)
        return "250 OK"


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receivers, str, str]]:
    got = Receivers()
    smtp_port = free_port()
    controller = Controller(_MailHandler(got.mail), hostname="127.0.0.1", port=smtp_port)
    controller.start()

    async def provider(request: web.Request) -> web.Response:
        raw = await request.read()
        ok = verify_signature(
            SECRET,
            request.headers["X-Haetae-Timestamp"],
            raw,
            request.headers["X-Haetae-Signature"],
            now=datetime.now(UTC).timestamp(),
        )
        if not ok:
            return web.Response(status=401)
        planned = got.answers.get(request.path, [])
        status = planned.pop(0) if planned else 200
        got.http.append({"path": request.path, "status": status, **json.loads(raw)})
        return web.json_response({"message_id": "m-1"}, status=status)

    app = web.Application()
    app.router.add_post("/sms", provider)
    app.router.add_post("/push", provider)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield got, f"smtp://127.0.0.1:{smtp_port}", f"http://127.0.0.1:{http_port}"
    await runner.cleanup()
    controller.stop()


@pytest.fixture
async def engine(
    settings: Settings, clock: Clock, receivers: tuple[Receivers, str, str]
) -> AsyncIterator[tuple[Services, httpx.AsyncClient, Receivers]]:
    got, smtp_url, http_url = receivers
    configured = settings.model_copy(
        update={
            "smtp_url": smtp_url,
            "sms_provider_url": f"{http_url}/sms",
            "push_provider_url": f"{http_url}/push",
            "provider_secret": SECRET.decode(),
        }
    )
    services = build_services(configured, clock=clock)
    # The dispatcher is driven by the tests (drain), not by its background loop.
    transport = httpx.ASGITransport(app=create_app(configured, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://haetae.test") as client:
        yield services, client, got
    await services.stop()


async def _customer(client: httpx.AsyncClient, key: str, customer_id: str = "c-1", **extra: Any):
    body = {
        "phone": "01012345678",
        "email": "kim@example.com",
        "locale": "ko",
        "push_token": "push-token-1",
        **extra,
    }
    response = await client.put(f"/v1/customers/{customer_id}", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


async def _notice(services: Services, clock: Clock, **kwargs: Any) -> str:
    """A notice for customer c-1; by default the security notice of a certificate reissue."""
    defaults = {
        "customer_id": "c-1",
        "kind": "certificate_reissued",
        "category": "security",
        "context": REISSUED,
    }
    async with services.db.transaction() as session:
        return await send_notice(session, services.templates, now=clock(), **{**defaults, **kwargs})


async def test_customer_and_preferences_api(
    engine: tuple[Services, httpx.AsyncClient, Receivers],
) -> None:
    services, client, _ = engine
    key = await service_key(services, "notify")
    await _customer(client, key)
    bad = await client.put("/v1/customers/c-2", json={"phone": "call me"}, headers=auth(key))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "phone"
    bad = await client.put("/v1/customers/c-2", json={"email": "nope"}, headers=auth(key))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "email"

    prefs = await client.get("/v1/customers/c-1/preferences", headers=auth(key))
    assert prefs.json()["preferences"]["marketing"]["sms"] is True
    off = {"preferences": {"marketing": {"sms": False}, "security": {"push": False}}}
    changed = await client.put("/v1/customers/c-1/preferences", json=off, headers=auth(key))
    assert changed.json()["preferences"]["marketing"]["sms"] is False
    assert changed.json()["preferences"]["security"]["push"] is False
    never = {"preferences": {"security": {"inbox": False}}}
    refused = await client.put("/v1/customers/c-1/preferences", json=never, headers=auth(key))
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "preferences.security.inbox"


async def test_a_security_notice_reaches_every_channel_with_history(
    engine: tuple[Services, httpx.AsyncClient, Receivers], clock: Clock
) -> None:
    services, client, got = engine
    key = await service_key(services, "notify")
    await _customer(client, key)
    notification_id = await _notice(
        services,
        clock,
        channels=("inbox", "push", "sms", "email"),
    )
    assert await services.dispatcher.drain() == 3

    assert len(got.mail) == 1
    mail = got.mail[0].content.decode()
    assert "Message-ID: <dlv_" in mail and got.mail[0].rcpt_tos == ["kim@example.com"]
    paths = sorted(r["path"] for r in got.http)
    assert paths == ["/push", "/sms"]
    sms = next(r for r in got.http if r["path"] == "/sms")
    assert sms["to"] == "01012345678" and sms["type"] in ("sms", "lms")

    inbox = await client.get("/v1/customers/c-1/inbox", headers=auth(key))
    item = inbox.json()["items"][0]
    assert item["kind"] == "certificate_reissued" and item["banner"] is True
    read = await client.post(f"/v1/customers/c-1/inbox/{item['id']}/read", headers=auth(key))
    assert read.status_code == 204
    inbox = await client.get("/v1/customers/c-1/inbox", headers=auth(key))
    assert inbox.json()["items"][0]["read"] is True
    gone = await client.post(f"/v1/customers/c-1/inbox/{item['id']}/dismiss", headers=auth(key))
    assert gone.status_code == 204
    assert (await client.get("/v1/customers/c-1/inbox", headers=auth(key))).json()["items"] == []
    other = await client.post(f"/v1/customers/c-2/inbox/{item['id']}/dismiss", headers=auth(key))
    assert other.status_code == 404  # another customer's item

    shown = (await client.get(f"/v1/notifications/{notification_id}", headers=auth(key))).json()
    statuses = {d["channel"]: d["status"] for d in shown["deliveries"]}
    assert statuses == {"inbox": "delivered", "push": "sent", "sms": "sent", "email": "sent"}
    push = next(d for d in shown["deliveries"] if d["channel"] == "push")
    assert [h["status"] for h in push["history"]] == ["queued", "sent"]


async def test_retry_with_backoff_then_success(
    engine: tuple[Services, httpx.AsyncClient, Receivers], clock: Clock
) -> None:
    services, client, got = engine
    key = await service_key(services, "notify")
    await _customer(client, key)
    got.answers["/sms"] = [503, 503]
    notification_id = await _notice(
        services,
        clock,
        channels=("sms",),
    )
    assert await services.dispatcher.run_once() == 1
    assert await services.dispatcher.run_once() == 0  # waiting out the backoff
    clock.fixed = utcnow() + timedelta(seconds=2)
    await services.dispatcher.run_once()
    clock.fixed = utcnow() + timedelta(seconds=10)
    await services.dispatcher.run_once()
    shown = (await client.get(f"/v1/notifications/{notification_id}", headers=auth(key))).json()
    sms = shown["deliveries"][0]
    assert sms["status"] == "sent" and sms["attempts"] == 3
    assert [h["status"] for h in sms["history"]] == ["queued", "queued", "queued", "sent"]
    assert [r["status"] for r in got.http] == [503, 503, 200]


async def test_push_that_fails_or_is_not_acknowledged_falls_back_to_sms(
    engine: tuple[Services, httpx.AsyncClient, Receivers], clock: Clock
) -> None:
    services, client, got = engine
    key = await service_key(services, "notify")
    await _customer(client, key)
    got.answers["/push"] = [400]  # the provider refuses: no retry, straight to SMS
    refused = await _notice(
        services,
        clock,
        channels=("push",),
    )
    await services.dispatcher.drain()
    shown = (await client.get(f"/v1/notifications/{refused}", headers=auth(key))).json()
    by_channel = {d["channel"]: d for d in shown["deliveries"]}
    assert by_channel["push"]["status"] == "failed"
    assert by_channel["sms"]["status"] == "sent"
    assert by_channel["sms"]["fallback_of"] == by_channel["push"]["id"]

    acked = await _notice(
        services,
        clock,
        channels=("push",),
        dedup_key="second",
    )
    silent = await _notice(
        services,
        clock,
        channels=("push",),
        dedup_key="third",
    )
    await services.dispatcher.drain()
    for notification_id in (acked,):
        push = (await client.get(f"/v1/notifications/{notification_id}", headers=auth(key))).json()[
            "deliveries"
        ][0]
        receipt = await client.post(
            f"/v1/notifications/deliveries/{push['id']}/receipt", json={}, headers=auth(key)
        )
        assert receipt.status_code == 204
    clock.fixed = utcnow() + timedelta(minutes=2)  # past the acknowledgement time
    await services.dispatcher.drain()
    acked_view = (await client.get(f"/v1/notifications/{acked}", headers=auth(key))).json()
    silent_view = (await client.get(f"/v1/notifications/{silent}", headers=auth(key))).json()
    assert [d["status"] for d in acked_view["deliveries"]] == ["delivered"]
    silent_by = {d["channel"]: d for d in silent_view["deliveries"]}
    assert silent_by["push"]["reason"] == "not_acknowledged"
    assert silent_by["sms"]["status"] == "sent"


async def test_marketing_needs_consent_and_waits_out_quiet_hours(
    engine: tuple[Services, httpx.AsyncClient, Receivers], clock: Clock
) -> None:
    services, client, _ = engine
    key = await service_key(services, "notify")
    await _customer(client, key)
    clock.fixed = datetime(2026, 11, 22, 13, 30, tzinfo=UTC)  # 22:30 in Seoul
    no_consent = await _notice(
        services,
        clock,
        category="marketing",
        channels=("push", "email"),
    )
    view = (await client.get(f"/v1/notifications/{no_consent}", headers=auth(key))).json()
    assert {d["reason"] for d in view["deliveries"]} == {"no_marketing_consent"}

    await _customer(client, key, marketing_consent=True)
    night = await _notice(
        services,
        clock,
        category="marketing",
        channels=("push", "email"),
        dedup_key="night",
    )
    await services.dispatcher.drain()
    view = (await client.get(f"/v1/notifications/{night}", headers=auth(key))).json()
    status = {d["channel"]: d["status"] for d in view["deliveries"]}
    assert status == {"push": "queued", "email": "sent"}  # e-mail is exempt; push waits
    clock.fixed = datetime(2026, 11, 22, 23, 0, 1, tzinfo=UTC)  # 08:00:01 in Seoul
    await services.dispatcher.drain()
    view = (await client.get(f"/v1/notifications/{night}", headers=auth(key))).json()
    assert {d["channel"]: d["status"] for d in view["deliveries"]}["push"] == "sent"


async def test_duplicates_are_dropped_and_security_is_never_rate_limited(
    engine: tuple[Services, httpx.AsyncClient, Receivers], clock: Clock
) -> None:
    services, client, _ = engine
    key = await service_key(services, "notify")
    await _customer(client, key)
    first = await _notice(
        services,
        clock,
        channels=("inbox",),
        dedup_key="reissue-1",
    )
    again = await _notice(
        services,
        clock,
        channels=("inbox",),
        dedup_key="reissue-1",
    )
    assert again == first
    limits = NoticeLimits(per_customer_per_hour=2)
    ids = []
    for n in range(3):
        ids.append(
            await _notice(
                services,
                clock,
                category="transactional",
                channels=("email",),
                limits=limits,
                dedup_key=f"t{n}",
            )
        )
    security = await _notice(services, clock, channels=("email",), limits=limits, dedup_key="s")
    reasons = []
    for notification_id in [*ids, security]:
        view = (await client.get(f"/v1/notifications/{notification_id}", headers=auth(key))).json()
        reasons.append(view["deliveries"][0]["reason"])
    assert reasons == [None, None, "rate_limited", None]
