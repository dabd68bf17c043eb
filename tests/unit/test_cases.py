"""The 24-hour fraud report channel end to end on the real database: the report acts at
once (suspension, hold, card block, certificate revocation, lists the rules read), the
reporter hears of every step, analysts move the case through the damage-relief process and
lift actions only with a reason, and the audit trail shows any tampering."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, update

from haetae.cases.models import CaseEvent
from haetae.certificates.service import NewCertificate
from haetae.notify.models import Notification
from haetae.notify.notices import thaw_context
from haetae.services import Services
from tests.conftest import Clock
from tests.helpers import auth, service_key

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)  # Friday 22:00 in Seoul
HERE, ELSEWHERE = "090", "088"
SEOUL = ZoneInfo("Asia/Seoul")


def report_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "voice_phishing",
        "reporter": {"customer_id": "c-1"},
        "victim": {"customer_id": "c-1", "account_number": "3333-01-1234567"},
        "suspect_accounts": [
            {"bank_code": HERE, "account_number": "3333-05-7654321", "amount": 3_000_000},
            {"bank_code": ELSEWHERE, "account_number": "110-123-456789", "amount": 2_000_000},
        ],
        "amount": 5_000_000,
        "currency": "KRW",
        "occurred_at": "2026-11-20T12:30:00Z",
        "description": "검찰 사칭 전화를 받고 안전계좌라며 알려준 계좌로 이체했습니다.",
    }
    body.update(overrides)
    return body


@pytest.fixture
async def keys(services: Services, clock: Clock) -> dict[str, dict[str, str]]:
    clock.fixed = NOW
    return {
        "cases": auth(await service_key(services, "cases"), **{"Accept-Language": "en"}),
        "risk": auth(await service_key(services, "risk")),
        "payments": auth(await service_key(services, "payments")),
    }


async def report(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]], body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post("/v1/fraud-reports", json=body, headers={**keys["cases"], **headers})


async def evaluate(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]], **event: Any
) -> dict[str, Any]:
    body = {"kind": "transfer", "customer_id": "c-9", "occurred_at": NOW.isoformat(), **event}
    response = await client.post("/v1/risk/evaluate", json=body, headers=keys["risk"])
    assert response.status_code == 200, response.text
    return dict(response.json())


def by_type(actions: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for action in actions:
        grouped.setdefault(action["type"], []).append(action)
    return grouped


async def test_a_report_acts_at_once_and_blocks_the_next_transfer_to_the_account(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    payee_here = {"bank_code": HERE, "account_number": "33330576543 21".replace(" ", "")}
    before = await evaluate(client, keys, amount=100_000, payee=payee_here)
    assert before["decision"] == "allow"

    response = await report(client, keys, report_body())
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["case_id"].startswith("FR-20261120-")
    actions = by_type(created["actions"])
    assert [a["target"] for a in actions["payment_suspension"]] == ["090:3333-05-7654321"]
    assert actions["payment_suspension"][0]["status"] == "active"
    assert [a["target"] for a in actions["suspension_request"]] == ["088:110-123-456789"]
    assert actions["suspension_request"][0]["status"] == "requested"
    assert len(actions["mule_list_entry"]) == 2
    assert [a["target"] for a in actions["transfer_hold"]] == ["c-1"]
    assert all(a["taken_by"] and a["reason"] and a["taken_at"] for a in created["actions"])

    # In force before the answer came back: by account number with or without dashes.
    blocked = await evaluate(client, keys, amount=100_000, payee=payee_here)
    assert blocked["decision"] == "block"
    assert [h["name"] for h in blocked["rule_hits"]] == ["reported_account"]
    elsewhere = {"bank_code": ELSEWHERE, "account_number": "110-123-456789"}
    assert (await evaluate(client, keys, payee=elsewhere))["decision"] == "block"
    # The victim's own transfers wait for an analyst.
    held = await evaluate(
        client, keys, customer_id="c-1", payee={"bank_code": "004", "account_number": "123456"}
    )
    assert held["decision"] == "review"

    case = (await client.get(f"/v1/cases/{created['case_id']}", headers=keys["cases"])).json()
    assert case["state"] == "protective_actions_taken"
    assert case["first_action_at"] is not None and case["audit_intact"] is True
    assert [h["type"] for h in case["history"]][:2] == ["received", "action_taken"]
    first_action = next(t for t in case["sla"] if t["name"] == "first_action")
    assert first_action["status"] == "met"
    # The written application's deadline: three business days, so across the weekend.
    assert case["state_due_at"] is not None

    async with services.db.sessions() as session:
        kinds = list(
            await session.scalars(
                select(Notification.kind)
                .where(Notification.customer_id == "c-1")
                .order_by(Notification.created_at)
            )
        )
    assert kinds == ["fraud_report_received", "fraud_case_updated"]
    async with services.db.sessions() as session:
        update_notice = await session.scalar(
            select(Notification).where(Notification.kind == "fraud_case_updated")
        )
    assert update_notice is not None
    deadline = thaw_context(update_notice.context)["deadline"]
    # Reported on a Friday night: three business days end with Wednesday the 25th (Seoul).
    assert deadline.astimezone(SEOUL).date() == date(2026, 11, 25)


async def test_business_day_deadlines_skip_korean_public_holidays(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]], clock: Clock
) -> None:
    """Reported on Wednesday 2026-09-23 (Seoul), the day before the Chuseok holidays
    (24-26 September, then the weekend): the written application's three business days are
    28, 29 and 30 September, not 24, 25 and 28."""
    clock.fixed = datetime(2026, 9, 23, 1, 0, tzinfo=UTC)  # 10:00 in Seoul
    response = await report(
        client, keys, report_body(occurred_at="2026-09-23T00:30:00Z"), **{"Idempotency-Key": "k"}
    )
    assert response.status_code == 201, response.text
    case = await client.get(f"/v1/cases/{response.json()['case_id']}", headers=keys["cases"])
    due = datetime.fromisoformat(case.json()["state_due_at"]).astimezone(SEOUL)
    assert (due.date(), due.hour) == (date(2026, 10, 1), 0)  # the end of 30 September


async def test_the_same_key_answers_the_same_case_and_another_body_is_refused(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    first = await report(client, keys, report_body(), **{"Idempotency-Key": "rep-1"})
    again = await report(client, keys, report_body(), **{"Idempotency-Key": "rep-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["case_id"] == first.json()["case_id"]
    assert len(again.json()["actions"]) == len(first.json()["actions"])
    other = await report(client, keys, report_body(amount=1), **{"Idempotency-Key": "rep-1"})
    assert other.status_code == 409
    assert other.json()["error"]["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "pyramid_scheme"}, "kind"),
        ({"reporter": {}}, "reporter"),
        ({"suspect_accounts": [{"bank_code": "9", "account_number": "123456"}]}, "bank_code"),
        ({"amount": -5}, "amount"),
        ({"occurred_at": "2026-11-20T12:30:00"}, "occurred_at"),
    ],
)
async def test_bad_reports_are_refused_naming_the_field(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]], change: dict[str, Any], field: str
) -> None:
    response = await report(client, keys, report_body(**change))
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["field"]


async def test_keys_and_scopes(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    assert (await client.post("/v1/fraud-reports", json=report_body())).status_code == 401
    wrong = await client.post("/v1/fraud-reports", json=report_body(), headers=keys["risk"])
    assert wrong.status_code == 403
    missing = await client.get("/v1/cases/FR-20260101-AAAAAA", headers=keys["cases"])
    assert missing.status_code == 404


async def test_a_lost_card_is_blocked_for_payments(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    body = report_body(
        kind="lost_card",
        victim={"customer_id": "c-2", "card_id": "fp-card-77"},
        suspect_accounts=[],
    )
    response = await report(client, keys, body)
    assert response.status_code == 201, response.text
    assert [a["type"] for a in response.json()["actions"]] == ["card_block"]
    payment = await evaluate(client, keys, kind="payment", customer_id="c-2", card_id="fp-card-77")
    assert payment["decision"] == "block"
    other_card = await evaluate(client, keys, kind="payment", customer_id="c-2", card_id="fp-2")
    assert other_card["decision"] == "allow"


async def test_account_takeover_revokes_the_recently_reissued_certificate(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]], clock: Clock
) -> None:
    clock.fixed = NOW - timedelta(days=30)
    old = await services.certificates.register(
        NewCertificate.from_metadata("c-3", "joint", clock(), "phone-1")
    )
    kept = await services.certificates.register(
        NewCertificate.from_metadata("c-3", "financial", clock(), "phone-1")
    )
    clock.fixed = NOW - timedelta(hours=5)
    await services.certificates.reissue(old.certificate.id, device_id="phone-x")
    clock.fixed = NOW
    body = report_body(kind="account_takeover", victim={"customer_id": "c-3"}, suspect_accounts=[])
    response = await report(client, keys, body)
    assert response.status_code == 201, response.text
    actions = by_type(response.json()["actions"])
    assert [a["target"] for a in actions["certificate_revocation"]] == [old.certificate.id]
    revoked, _ = await services.certificates.get(old.certificate.id)
    untouched, _ = await services.certificates.get(kept.certificate.id)
    assert (revoked.status, untouched.status) == ("revoked", "active")


async def test_lifting_needs_a_reason_and_takes_the_account_off_the_list(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    payee = {"bank_code": HERE, "account_number": "3333-05-7654321"}
    first = (await report(client, keys, report_body())).json()
    second = (await report(client, keys, report_body(reporter={"phone": "010-5555-0000"}))).json()
    entry = next(
        a
        for a in first["actions"]
        if a["type"] == "mule_list_entry" and a["target"].startswith(HERE)
    )
    url = f"/v1/cases/{first['case_id']}/actions/{entry['id']}/lift"
    no_reason = await client.post(url, json={}, headers=keys["cases"])
    assert no_reason.status_code == 422 and no_reason.json()["error"]["field"].endswith("reason")
    lifted = await client.post(
        url, json={"reason": "account holder proved it was a refund"}, headers=keys["cases"]
    )
    assert lifted.status_code == 200, lifted.text
    action = next(a for a in lifted.json()["actions"] if a["id"] == entry["id"])
    assert action["status"] == "lifted" and action["lift_reason"].startswith("account holder")
    # The second case still holds the account: still blocked.
    assert (await evaluate(client, keys, payee=payee))["decision"] == "block"
    other = next(
        a
        for a in second["actions"]
        if a["type"] == "mule_list_entry" and a["target"].startswith(HERE)
    )
    url2 = f"/v1/cases/{second['case_id']}/actions/{other['id']}/lift"
    assert (
        await client.post(url2, json={"reason": "cleared"}, headers=keys["cases"])
    ).status_code == 200
    assert (await evaluate(client, keys, payee=payee))["decision"] == "allow"
    twice = await client.post(url2, json={"reason": "cleared"}, headers=keys["cases"])
    assert twice.status_code == 409


async def test_the_case_follows_the_damage_relief_process_and_the_reporter_hears_each_step(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]], clock: Clock
) -> None:
    case_id = (await report(client, keys, report_body())).json()["case_id"]
    url = f"/v1/cases/{case_id}/transition"
    skipped = await client.post(
        url, json={"state": "refund_decided", "refund_amount": 1}, headers=keys["cases"]
    )
    assert skipped.status_code == 409 and skipped.json()["error"]["field"] == "state"
    for step, extra in [
        ("damage_relief_applied", {}),
        ("extinction_notice", {}),
        ("refund_decided", {"refund_amount": 4_100_000}),
        ("closed", {}),
    ]:
        clock.fixed = clock() + timedelta(days=1)
        if step == "refund_decided":
            missing = await client.post(url, json={"state": step}, headers=keys["cases"])
            assert (
                missing.status_code == 422 and missing.json()["error"]["field"] == "refund_amount"
            )
        moved = await client.post(url, json={"state": step, **extra}, headers=keys["cases"])
        assert moved.status_code == 200, moved.text
        assert moved.json()["state"] == step
    final = moved.json()
    assert final["refund_amount"] == 4_100_000 and final["closed_at"] and final["decided_at"]
    after = await client.post(url, json={"state": "rejected", "reason": "x"}, headers=keys["cases"])
    assert after.status_code == 409
    async with services.db.sessions() as session:
        steps = [
            n.context["step"]
            for n in await session.scalars(
                select(Notification)
                .where(Notification.kind == "fraud_case_updated")
                .order_by(Notification.created_at)
            )
        ]
    assert steps == [
        "actions_taken",
        "relief_applied",
        "extinction_notice",
        "refund_decided",
        "closed",
    ]


async def test_a_changed_audit_entry_shows(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    case_id = (await report(client, keys, report_body())).json()["case_id"]
    await client.post(
        f"/v1/cases/{case_id}/notes", json={"text": "called the victim back"}, headers=keys["cases"]
    )
    await client.post(
        f"/v1/cases/{case_id}/assign", json={"assignee": "analyst-kim"}, headers=keys["cases"]
    )
    intact = (await client.get(f"/v1/cases/{case_id}", headers=keys["cases"])).json()
    assert intact["audit_intact"] and intact["assignee"] == "analyst-kim"
    assert [h["type"] for h in intact["history"]][-2:] == ["note", "assigned"]
    async with services.db.transaction() as session:
        await session.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == case_id, CaseEvent.type == "note")
            .values(detail={"text": "nothing happened"})
        )
    tampered = (await client.get(f"/v1/cases/{case_id}", headers=keys["cases"])).json()
    assert tampered["audit_intact"] is False


async def test_evidence_is_checked_by_content_and_size(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    case_id = (await report(client, keys, report_body())).json()["case_id"]
    url = f"/v1/cases/{case_id}/evidence"
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    ok = await client.post(
        url, files={"file": ("sms.png", png, "image/png")}, headers=keys["cases"]
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["content_type"] == "image/png" and ok.json()["size"] == len(png)
    exe = await client.post(
        url, files={"file": ("photo.png", b"MZ\x90\x00" * 10, "image/png")}, headers=keys["cases"]
    )
    assert exe.status_code == 415 and exe.json()["error"]["field"] == "file"
    big = await client.post(
        url,
        files={"file": ("big.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024), "application/pdf")},
        headers=keys["cases"],
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "evidence_too_large"
    # Over the request limit of other routes (1 MiB), within the evidence route's own.
    pdf = b"%PDF-" + b"0" * (3 * 1024 * 1024)
    three_mb = await client.post(
        url, files={"file": ("long.pdf", pdf, "application/pdf")}, headers=keys["cases"]
    )
    assert three_mb.status_code == 201, three_mb.text
    listed = (await client.get(url, headers=keys["cases"])).json()
    assert [e["filename"] for e in listed] == ["sms.png", "long.pdf"]
    stored = services.settings.data_dir / "evidence" / listed[0]["sha256"]
    assert stored.read_bytes() == png


async def test_the_queue_puts_the_most_urgent_case_first(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]], clock: Clock
) -> None:
    no_action = report_body(kind="other", suspect_accounts=[], victim={})
    older = (await report(client, keys, no_action)).json()["case_id"]
    clock.fixed = NOW + timedelta(minutes=20)
    newer = (await report(client, keys, no_action)).json()["case_id"]
    acted = (await report(client, keys, report_body())).json()["case_id"]
    clock.fixed = NOW + timedelta(hours=2)  # both untouched reports are past their first-action SLA
    queue = (await client.get("/v1/cases", headers=keys["cases"])).json()["items"]
    ids = [item["id"] for item in queue]
    assert ids.index(older) < ids.index(newer) < ids.index(acted)
    assert queue[0]["minutes_left"] < 0


async def test_a_reporter_known_only_by_phone_is_answered_by_sms(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    body = report_body(reporter={"phone": "010-1234-5678"}, victim={})
    assert (await report(client, keys, body)).status_code == 201
    async with services.db.sessions() as session:
        count = await session.scalar(
            select(func.count()).where(Notification.customer_id == "phone:01012345678")
        )
    assert count == 2  # the acknowledgement and "protective actions taken"


async def test_demo_reports_are_opened_once(
    services: Services, client: httpx.AsyncClient, keys: dict[str, dict[str, str]]
) -> None:
    from haetae.demo import DEMO_REPORTS, seed_demo_cases

    assert await seed_demo_cases(services) == len(DEMO_REPORTS)
    assert await seed_demo_cases(services) == 0  # a restart adds none
    queue = (await client.get("/v1/cases", headers=keys["cases"])).json()["items"]
    assert len(queue) == len(DEMO_REPORTS)
    card = await evaluate(
        client, keys, kind="payment", customer_id="x", card_id="demo-card-fingerprint-3"
    )
    assert card["decision"] == "block"
