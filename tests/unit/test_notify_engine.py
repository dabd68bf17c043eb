"""The notification engine end to end: customers and preferences over the API, notices
queued with the state that causes them, and the dispatcher sending through a real SMTP
server and a real HTTP provider on loopback, with retries, fallback and status history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from haetae.config import Settings
from haetae.db.base import utcnow
from haetae.notify.dispatcher import Dispatcher, DispatchSettings
from haetae.notify.models import Customer, Delivery, DeliveryEvent
from haetae.notify.notices import NoticeLimits, send_notice
from haetae.services import Services, build_services
from tests.conftest import Clock
from tests.helpers import auth, service_key
from tests.receivers import SECRET, Receivers

REISSUED = {
    "certificate_kind": "joint",
    "reissued_at": datetime(2026, 11, 22, 0, 30, tzinfo=UTC),
    "device_name": "Galaxy S24",
    "report_url": "https://bank.example/report",
    "contact_phone": "1599-0000",
}


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


async def test_a_result_lands_only_on_a_delivery_still_sending(
    settings: Settings, clock: Clock
) -> None:
    """A worker whose claim was taken over (its send hung past the lease) finishes late:
    its result must not overwrite the newer one, nor add a second history row."""
    calls: list[str] = []
    arrived, release = asyncio.Event(), asyncio.Event()

    async def provider(request: web.Request) -> web.Response:
        calls.append(request.headers["Idempotency-Key"])
        if len(calls) == 1:
            arrived.set()
            await release.wait()  # the first worker's send hangs
        return web.json_response({"message_id": f"m-{len(calls)}"})

    app = web.Application()
    app.router.add_post("/sms", provider)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    configured = settings.model_copy(
        update={"sms_provider_url": str(server.make_url("/sms")), "provider_secret": "s"}
    )
    services = build_services(configured, clock=clock)
    late = services.dispatcher
    # A second worker with a short lease: it takes the first one's claim over.
    eager = Dispatcher(
        services.db,
        services.channels,
        services.templates,
        clock=clock,
        settings=DispatchSettings(lease=timedelta(seconds=0.3)),
    )
    try:
        async with services.db.transaction() as session:
            session.add(Customer(id="c-1", phone="01012345678"))
        notification_id = await _notice(services, clock, channels=("sms",))
        first = asyncio.create_task(late.run_once())
        await asyncio.wait_for(arrived.wait(), 10)
        await asyncio.sleep(0.4)  # the first claim is now past the second worker's lease
        assert await eager.run_once() == 1  # sent again, answered at once, recorded
        release.set()
        assert await first == 1  # its result is superseded
        async with services.db.sessions() as session:
            delivery = (
                await session.scalars(
                    select(Delivery).where(Delivery.notification_id == notification_id)
                )
            ).one()
            history = (
                await session.scalars(
                    select(DeliveryEvent.status)
                    .where(DeliveryEvent.delivery_id == delivery.id)
                    .order_by(DeliveryEvent.id)
                )
            ).all()
    finally:
        await services.stop()
        await server.close()
    assert calls == [delivery.id, delivery.id]  # one key: the provider drops the repeat
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == ("sent", 1, "m-2")
    assert history == ["queued", "sent"]


async def test_a_push_with_no_push_provider_falls_back_to_sms(
    settings: Settings, clock: Clock, receivers: tuple[Receivers, str, str]
) -> None:
    got, _, http_url = receivers
    configured = settings.model_copy(
        update={"sms_provider_url": f"{http_url}/sms", "provider_secret": SECRET.decode()}
    )
    services = build_services(configured, clock=clock)
    try:
        async with services.db.transaction() as session:
            session.add(Customer(id="c-1", phone="01012345678", push_token="push-token-1"))
        notification_id = await _notice(services, clock, channels=("push",))
        await services.dispatcher.drain()
        async with services.db.sessions() as session:
            deliveries = {
                d.channel: d
                for d in await session.scalars(
                    select(Delivery).where(Delivery.notification_id == notification_id)
                )
            }
    finally:
        await services.stop()
    assert (deliveries["push"].status, deliveries["push"].reason) == (
        "failed",
        "channel_not_configured",
    )
    assert deliveries["sms"].status == "sent"
    assert deliveries["sms"].fallback_of == deliveries["push"].id
    assert [r["path"] for r in got.http] == ["/sms"]


async def test_what_is_unsent_when_the_lease_ends_is_left_for_a_takeover(
    settings: Settings, clock: Clock
) -> None:
    """A batch too slow for its lease does not start sends another worker may be making."""
    calls: list[str] = []

    async def slow_provider(request: web.Request) -> web.Response:
        calls.append(request.headers["Idempotency-Key"])
        await asyncio.sleep(0.2)
        return web.json_response({"message_id": "m"})

    app = web.Application()
    app.router.add_post("/sms", slow_provider)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    configured = settings.model_copy(
        update={"sms_provider_url": str(server.make_url("/sms")), "provider_secret": "s"}
    )
    services = build_services(configured, clock=clock)
    one_at_a_time = Dispatcher(
        services.db,
        services.channels,
        services.templates,
        clock=clock,
        settings=DispatchSettings(concurrency=1, lease=timedelta(seconds=0.3)),
    )
    try:
        async with services.db.transaction() as session:
            session.add(Customer(id="c-1", phone="01012345678"))
        for n in range(3):
            await _notice(services, clock, channels=("sms",), dedup_key=f"n{n}")
        assert await one_at_a_time.run_once() == 3  # two sent; the third would start too late
        assert len(calls) == 2
        async with services.db.sessions() as session:
            left = (
                await session.scalars(select(Delivery).where(Delivery.status == "sending"))
            ).one()
        await asyncio.sleep(0.35)  # its claim is past the lease: any worker may take it over
        assert await one_at_a_time.run_once() == 1
        async with services.db.sessions() as session:
            statuses = (await session.scalars(select(Delivery.status))).all()
    finally:
        await services.stop()
        await server.close()
    assert calls[2] == left.id and len(calls) == 3  # each sent once
    assert statuses == ["sent"] * 3
