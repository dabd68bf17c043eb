"""The certificate lifecycle over the API: registration (PEM or metadata), the durable
reminder schedule, renewal and reissue notices on every channel, banners and the login
pop-up, and the ``certificate.reissued`` event for the fraud engine."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from haetae.bus.models import OutboxEvent
from haetae.certificates.models import Certificate, CertificateReminder
from haetae.certificates.reminders import ReminderWorker, plan_missing
from haetae.certificates.schedule import plan
from haetae.notify.models import Notification
from haetae.services import Services, build_services
from haetae.timezones import SEOUL
from tests.conftest import Clock
from tests.helpers import auth, service_key
from tests.receivers import Receivers, mail_text

Engine = tuple[Services, httpx.AsyncClient, Receivers]
# A Monday morning in Seoul (01:00 UTC = 10:00 KST), so every reminder time is in reach.
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def make_pem(not_before: datetime, not_after: datetime, name: str = "홍길동") -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "yessign"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Haetae Test CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(0x1A2B3C4D5E)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.PEM).decode()


async def _setup(engine: Engine, clock: Clock, customer: str = "c-1") -> str:
    services, client, _ = engine
    clock.fixed = START
    key = await service_key(services, "certificates", "notify")
    body = {
        "phone": "01012345678",
        "email": "kim@example.com",
        "locale": "ko",
        "push_token": "push-token-1",
    }
    response = await client.put(f"/v1/customers/{customer}", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    return key


async def _register(client: httpx.AsyncClient, key: str, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/certificates",
        json={"customer_id": "c-1", "device_id": "phone-1", **body},
        headers=auth(key),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _expiring_notices(services: Services, customer: str = "c-1") -> int:
    async with services.db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.customer_id == customer, Notification.kind == "certificate_expiring"
            )
        )
    return int(count or 0)


def _seoul(day: datetime, hour: int) -> datetime:
    """``hour`` o'clock Seoul time on the Seoul date of ``day``."""
    local = day.astimezone(SEOUL)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0).astimezone(UTC)


async def test_a_pem_is_parsed_and_a_reminder_already_due_goes_at_once_and_once(
    engine: Engine, clock: Clock
) -> None:
    services, client, got = engine
    key = await _setup(engine, clock)
    not_after = START + timedelta(days=6)
    pem = make_pem(START - timedelta(days=359), not_after)
    shown = await _register(client, key, pem=pem, device_name="Galaxy S24")
    assert shown["source"] == "pem" and shown["kind"] == "joint"
    assert shown["serial"] == "1A2B3C4D5E"
    assert "CN=홍길동" in shown["subject"] and shown["issuer"] == "CN=Haetae Test CA"
    assert len(shown["fingerprint_sha256"]) == 64
    assert shown["not_after"].startswith(not_after.isoformat()[:19])
    assert shown["days_left"] == 6 and shown["renewal_window_open"] is True
    # Six days left: D-7 is already due and sent now; D-30 is not sent at all.
    reminders = {r["days_before"]: r["status"] for r in shown["reminders"]}
    assert reminders == {7: "sent", 1: "pending", 0: "pending"}

    again = await client.post(
        "/v1/certificates",
        json={"customer_id": "c-1", "device_id": "phone-1", "pem": pem},
        headers=auth(key),
    )
    assert again.status_code == 200 and again.json()["id"] == shown["id"]
    assert await services.reminders.drain() == 0
    assert await _expiring_notices(services) == 1

    inbox = (await client.get("/v1/customers/c-1/inbox", headers=auth(key))).json()["items"]
    assert [i["kind"] for i in inbox] == ["certificate_expiring"]
    assert "6일 후" in inbox[0]["title"] or "6일" in inbox[0]["body"]
    await services.dispatcher.drain()
    assert sorted(r["path"] for r in got.http) == ["/push"]
    assert len(got.mail) == 1 and "6일 후 만료됩니다" in mail_text(got.mail[0])


async def test_metadata_kinds_get_their_validity(engine: Engine, clock: Clock) -> None:
    _, client, _ = engine
    key = await _setup(engine, clock)
    issued = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    joint = await _register(client, key, kind="joint", issued_at=issued.isoformat())
    financial = await _register(client, key, kind="financial", issued_at=issued.isoformat())
    assert joint["not_after"].startswith("2027-03-02T03:00:00")
    assert financial["not_after"].startswith("2029-03-02T03:00:00")
    assert {r["days_before"] for r in joint["reminders"]} == {30, 7, 1, 0}
    again = await client.post(
        "/v1/certificates",
        json={
            "customer_id": "c-1",
            "device_id": "phone-1",
            "kind": "joint",
            "issued_at": issued.isoformat(),
        },
        headers=auth(key),
    )
    assert again.status_code == 200 and again.json()["id"] == joint["id"]  # a retry
    assert all(r["status"] == "pending" for r in joint["reminders"])
    listed = (await client.get("/v1/customers/c-1/certificates", headers=auth(key))).json()
    assert [c["kind"] for c in listed["certificates"]] == ["joint", "financial"]


async def test_bad_registrations_get_a_4xx_naming_the_field(engine: Engine, clock: Clock) -> None:
    services, client, _ = engine
    key = await _setup(engine, clock)

    async def post(body: dict[str, Any], key: str = key) -> httpx.Response:
        return await client.post(
            "/v1/certificates",
            json={"customer_id": "c-1", "device_id": "phone-1", **body},
            headers=auth(key, **{"Accept-Language": "en"}),
        )

    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"pem": "hello"}, 422, "pem"),
        ({"pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}, 422, "pem"),
        ({"issued_at": START.isoformat()}, 422, "kind"),
        ({"kind": "joint"}, 422, "issued_at"),
        ({"kind": "gpki", "issued_at": START.isoformat()}, 422, "kind"),
        ({"kind": "joint", "issued_at": "2026-11-01T00:00:00"}, 422, "issued_at"),  # naive
        ({"kind": "joint", "issued_at": (START + timedelta(days=2)).isoformat()}, 422, "issued_at"),
        ({"kind": "joint", "issued_at": "2024-01-01T00:00:00Z"}, 422, "not_after"),  # expired
        (
            {"pem": make_pem(START, START + timedelta(days=9)), "issued_at": START.isoformat()},
            422,
            "issued_at",
        ),
        ({"kind": "joint", "issued_at": START.isoformat(), "extra": 1}, 422, "extra"),
    ]
    for body, status, field in cases:
        response = await post(body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["field"] == field, (body, error)
        assert error["message"] and error["next_step"]
    no_scope = await service_key(services, "notify")
    assert (
        await post({"kind": "joint", "issued_at": START.isoformat()}, no_scope)
    ).status_code == 403
    missing = await client.get("/v1/certificates/crt_nope", headers=auth(key))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "certificate_not_found"


async def test_reminders_follow_the_calendar_and_skip_what_downtime_made_stale(
    engine: Engine, clock: Clock
) -> None:
    services, client, _ = engine
    key = await _setup(engine, clock)
    issued = START - timedelta(days=365 - 40)  # joint: expires in 40 days
    shown = await _register(client, key, kind="joint", issued_at=issued.isoformat())
    not_after = datetime.fromisoformat(shown["not_after"])
    assert await services.reminders.drain() == 0  # nothing due yet

    d30 = _seoul(not_after - timedelta(days=30), 9)
    clock.fixed = d30 - timedelta(minutes=1)
    assert await services.reminders.drain() == 0
    clock.fixed = d30
    assert await services.reminders.drain() == 1
    assert await services.reminders.drain() == 0  # sent once
    banners = (await client.get("/v1/customers/c-1/banners", headers=auth(key))).json()
    assert banners["login_popup"]["kind"] == "certificate_expiring"
    assert "30일 후" in banners["login_popup"]["text"]

    # Down from before D-7 until after D-1: only the most recent reminder (D-1) goes.
    clock.fixed = _seoul(not_after - timedelta(days=1), 10)
    assert await services.reminders.drain() == 2
    assert await _expiring_notices(services) == 2
    shown = (await client.get(f"/v1/certificates/{shown['id']}", headers=auth(key))).json()
    by_day = {r["days_before"]: (r["status"], r["reason"]) for r in shown["reminders"]}
    assert by_day == {
        30: ("sent", None),
        7: ("skipped", "superseded"),
        1: ("sent", None),
        0: ("pending", None),
    }
    inbox = (await client.get("/v1/customers/c-1/inbox", headers=auth(key))).json()["items"]
    assert "내일" in inbox[0]["title"]


async def test_a_restart_after_downtime_sends_the_missed_reminder_once(
    engine: Engine, clock: Clock
) -> None:
    services, client, _ = engine
    key = await _setup(engine, clock)
    issued = START - timedelta(days=365 - 10)
    shown = await _register(client, key, kind="financial", issued_at=issued.isoformat())
    # Three years for a financial certificate: the D-7 reminder is three years away.
    not_after = datetime.fromisoformat(shown["not_after"])
    await services.stop()

    later = Clock()
    later.fixed = _seoul(not_after - timedelta(days=7), 15)  # the platform was down at 09:00
    for _ in range(2):  # two restarts: the second finds nothing left to send
        restarted = build_services(services.settings, clock=later)
        try:
            await restarted.reminders.drain()
        finally:
            await restarted.stop()
    assert await _expiring_notices(services) == 1


async def test_two_workers_never_send_the_same_reminder(engine: Engine, clock: Clock) -> None:
    services, client, _ = engine
    key = await _setup(engine, clock)
    for number in range(30):
        await client.post(
            "/v1/certificates",
            json={
                "customer_id": f"c-{number}",
                "device_id": "phone-1",
                "kind": "joint",
                "issued_at": (START - timedelta(days=300)).isoformat(),
            },
            headers=auth(key),
        )
    clock.fixed = START + timedelta(days=40)  # D-30 due for all 30 certificates
    others = [build_services(services.settings, clock=clock) for _ in range(2)]
    workers = [
        ReminderWorker(o.db, o.templates, o.certificates.settings, clock=clock, batch=7)
        for o in others
    ]
    try:
        done = await asyncio.gather(*(w.drain() for w in workers))
    finally:
        for other in others:
            await other.stop()
    assert sum(done) == 30
    async with services.db.sessions() as session:
        notified = await session.scalar(
            select(func.count(func.distinct(Notification.customer_id))).where(
                Notification.kind == "certificate_expiring"
            )
        )
        total = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.kind == "certificate_expiring")
        )
        sent = await session.scalar(
            select(func.count())
            .select_from(CertificateReminder)
            .where(CertificateReminder.status == "sent")
        )
    assert notified == total == sent == 30


async def test_renewal_is_announced_everywhere_and_ends_the_old_reminders(
    engine: Engine, clock: Clock
) -> None:
    services, client, got = engine
    key = await _setup(engine, clock)
    issued = START - timedelta(days=365 - 20)
    shown = await _register(client, key, kind="joint", issued_at=issued.isoformat())
    assert shown["renewal_window_open"] is True
    # D-30 was due 10 days ago: sent at registration, and the banner is up.
    banners = (await client.get("/v1/customers/c-1/banners", headers=auth(key))).json()
    assert [b["kind"] for b in banners["banners"]] == ["certificate_expiring"]

    new_not_after = datetime.fromisoformat(shown["not_after"]) + timedelta(days=365)
    renewed = await client.post(
        f"/v1/certificates/{shown['id']}/renew",
        json={"not_after": new_not_after.isoformat(), "method": "app"},
        headers=auth(key),
    )
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert body["renewal_window_open"] is False and body["renewed_at"]
    assert {r["days_before"] for r in body["reminders"]} == {30, 7, 1, 0}
    assert [h["kind"] for h in body["history"]] == ["registered", "renewed"]
    async with services.db.sessions() as session:
        old = list(
            await session.scalars(
                select(CertificateReminder).where(
                    CertificateReminder.status == "skipped",
                    CertificateReminder.reason == "renewed",
                )
            )
        )
    assert {r.days_before for r in old} == {7, 1, 0}

    banners = (await client.get("/v1/customers/c-1/banners", headers=auth(key))).json()
    assert banners == {"banners": [], "login_popup": None}
    inbox = (await client.get("/v1/customers/c-1/inbox", headers=auth(key))).json()["items"]
    assert inbox[0]["kind"] == "certificate_renewed"
    assert not any(i["banner"] for i in inbox if i["kind"] == "certificate_expiring")

    await services.dispatcher.drain()
    renewal_texts = [r["body"] for r in got.http if "갱신되었습니다" in r["body"]]
    assert {r["path"] for r in got.http if "갱신되었습니다" in r["body"]} == {"/sms", "/push"}
    local = new_not_after.astimezone(SEOUL)
    assert f"{local.year}년 {local.month}월 {local.day}일" in renewal_texts[0]  # new validity
    assert "해태뱅크 앱" in renewal_texts[0] and "1599-0000" in renewal_texts[0]  # how, whom
    mails = [mail_text(m) for m in got.mail]
    assert len(mails) == 2  # the D-30 reminder and the renewal notice
    # The two may arrive in either order (deliveries go concurrently).
    assert any("갱신 방법: 해태뱅크 앱" in m and "새 유효기간" in m for m in mails)

    stale = await client.post(
        f"/v1/certificates/{shown['id']}/renew",
        json={"not_after": shown["not_after"], "method": "app"},
        headers=auth(key),
    )
    assert stale.status_code == 422 and stale.json()["error"]["field"] == "not_after"


async def test_a_reissue_on_a_new_device_is_a_security_alert_and_a_fraud_signal(
    engine: Engine, clock: Clock
) -> None:
    services, client, got = engine
    key = await _setup(engine, clock)
    shown = await _register(
        client, key, kind="joint", issued_at=(START - timedelta(days=100)).isoformat()
    )
    clock.fixed = START + timedelta(hours=1)
    reissued = await client.post(
        f"/v1/certificates/{shown['id']}/reissue",
        json={"device_id": "phone-evil", "device_name": "iPhone 15"},
        headers=auth(key),
    )
    assert reissued.status_code == 200, reissued.text
    body = reissued.json()
    assert body["device_id"] == "phone-evil" and body["reissued_at"]
    assert body["not_after"] == shown["not_after"]  # a reissue keeps the expiry date

    banners = (await client.get("/v1/customers/c-1/banners", headers=auth(key))).json()
    assert banners["login_popup"]["kind"] == "certificate_reissued"
    popup = banners["login_popup"]
    assert "iPhone 15" in popup["text"] and not popup["text"].startswith("[해태뱅크]")
    await services.dispatcher.drain()
    assert {r["path"] for r in got.http} == {"/sms", "/push"}
    assert all("iPhone 15" in r["body"] and "1599-0000" in r["body"] for r in got.http)
    assert len(got.mail) == 1 and "https://bank.example/report" in mail_text(got.mail[0])

    async with services.db.sessions() as session:
        events = [
            e.payload
            for e in await session.scalars(
                select(OutboxEvent).where(OutboxEvent.topic == "certificate.reissued")
            )
        ]
    assert len(events) == 1
    assert events[0]["previous_device_id"] == "phone-1"
    assert events[0]["device_id"] == "phone-evil" and events[0]["new_device"] is True

    # Back on the customer's own phone: an event for the fraud engine, no alarm.
    back = await client.post(
        f"/v1/certificates/{shown['id']}/reissue", json={"device_id": "phone-1"}, headers=auth(key)
    )
    assert back.status_code == 200
    async with services.db.sessions() as session:
        topics = list(
            await session.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.topic == "certificate.reissued")
            )
        )
        alerts = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.kind == "certificate_reissued")
        )
    assert len(topics) == 2 and alerts == 2  # another device than the one it was on
    assert topics[1]["new_device"] is False

    # Once expired, a reissue starts a new one-year term, with its own reminders.
    clock.fixed = datetime.fromisoformat(shown["not_after"]) + timedelta(days=3)
    late = await client.post(
        f"/v1/certificates/{shown['id']}/reissue", json={"device_id": "phone-2"}, headers=auth(key)
    )
    renewed_term = datetime.fromisoformat(late.json()["not_after"])
    assert renewed_term == clock.fixed.replace(year=clock.fixed.year + 1)
    assert {r["days_before"] for r in late.json()["reminders"]} == {30, 7, 1, 0}


async def test_a_revoked_certificate_gets_no_reminders_and_cannot_be_renewed(
    engine: Engine, clock: Clock
) -> None:
    services, client, _ = engine
    key = await _setup(engine, clock)
    shown = await _register(
        client, key, kind="joint", issued_at=(START - timedelta(days=300)).isoformat()
    )
    revoked = await client.post(f"/v1/certificates/{shown['id']}/revoke", headers=auth(key))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert {r["status"] for r in revoked.json()["reminders"]} == {"skipped"}
    clock.fixed = START + timedelta(days=64)
    assert await services.reminders.drain() == 0
    assert await _expiring_notices(services) == 0
    refused = await client.post(
        f"/v1/certificates/{shown['id']}/renew",
        json={"not_after": (START + timedelta(days=800)).isoformat()},
        headers=auth(key),
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "certificate_revoked"


async def test_bulk_loaded_certificates_get_their_reminders_planned_once(
    engine: Engine, clock: Clock
) -> None:
    """``plan_missing`` (after a bulk load) plans what registration would have, and a second
    run finds nothing left to plan: the stored expiry is matched exactly."""
    services, _, _ = engine
    clock.fixed = START
    expiries = {
        "crt-bulk-far": START + timedelta(days=200, minutes=7, microseconds=123_456),
        "crt-bulk-near": START + timedelta(days=5, hours=3),  # D-7 already due
        "crt-bulk-early": _seoul(START + timedelta(days=40), 8),  # before 09:00 on its day
        "crt-bulk-gone": START - timedelta(days=1),  # expired: nothing to plan
    }
    async with services.db.transaction() as session:
        for certificate_id, not_after in expiries.items():
            session.add(
                Certificate(
                    id=certificate_id,
                    customer_id="c-bulk",
                    kind="joint",
                    source="metadata",
                    device_id="phone-1",
                    issued_at=not_after - timedelta(days=365),
                    not_after=not_after,
                )
            )
    settings = services.certificates.settings
    planned = await plan_missing(services.db, settings, START)
    async with services.db.sessions() as session:
        rows = (
            await session.execute(
                select(
                    CertificateReminder.certificate_id,
                    CertificateReminder.not_after,
                    CertificateReminder.days_before,
                    CertificateReminder.due_at,
                )
            )
        ).all()
    expected = {
        (certificate_id, not_after, reminder.days_before, reminder.due_at)
        for certificate_id, not_after in expiries.items()
        for reminder in plan(not_after, START, settings.reminder_days, settings.reminder_hour)
    }
    assert planned == len(expected) == 4 + 3 + 4  # far: all four; near: D-7, D-1, D-0
    assert {tuple(row) for row in rows} == expected
    assert await plan_missing(services.db, settings, START) == 0
