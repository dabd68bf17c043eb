"""The console's fraud case pages on a real database through the real app: the queue in
order of urgency with the time left (or overdue), a case with its timers, actions, next
steps and trail, the forms (lift only with a reason, move, assign, note) and their errors on
the page, the call centre's report form, who may open the pages, the Origin check, and the
customer's demo report page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from haetae.app import create_app
from haetae.cases.models import CaseEvent
from haetae.cases.schemas import FraudReportIn
from haetae.console.access import COOKIE, DEMO_USER
from haetae.services import Services
from tests.conftest import Clock
from tests.helpers import service_key

NOW = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)  # Friday 22:00 in Seoul
HERE, ELSEWHERE = "090", "088"
QUEUE = "/console/cases"
NEW = "/console/fraud-reports/new"
DEMO = "/demo/report"


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
        "occurred_at": "2026-11-20T12:30:00Z",
        "description": "검찰 사칭 전화를 받고 안전계좌라며 알려준 계좌로 이체했습니다.",
    }
    body.update(overrides)
    return body


async def file(services: Services, **overrides: Any) -> str:
    view, _ = await services.cases.report(
        FraudReportIn.model_validate(report_body(**overrides)), reported_by="call centre"
    )
    return view.case.id


@pytest.fixture
def at_now(clock: Clock) -> Clock:
    clock.fixed = NOW
    return clock


@pytest.fixture
async def remote_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on another machine, not on the platform's loopback."""
    transport = httpx.ASGITransport(
        app=create_app(services.settings, services), client=("203.0.113.9", 1)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://haetae.test") as c:
        yield c


def queue_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="case-([^"]+)"', html)


def row_of(html: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{re.escape(row_id)}".*?</tr>', html, re.S)
    assert found is not None, row_id
    return found.group(0)


def action_id(html: str, type_: str, target_start: str = "") -> str:
    for found in re.finditer(r'<tr id="action-([^"]+)" class="[^"]*" data-type="([^"]+)"', html):
        if found.group(2) == type_ and target_start in row_of(html, f"action-{found.group(1)}"):
            return found.group(1)
    raise AssertionError(f"no {type_} action")


# --- the queue ----------------------------------------------------------------------------


async def test_the_queue_lists_open_cases_most_urgent_first_with_the_time_left(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    untouched = {"kind": "other", "suspect_accounts": [], "victim": {}}
    older = await file(services, **untouched)
    at_now.fixed = NOW + timedelta(minutes=20)
    newer = await file(services, **untouched)
    acted = await file(services)
    closed = await file(services, **untouched)
    await services.cases.transition(closed, "rejected", actor="t", reason="duplicate")
    at_now.fixed = NOW + timedelta(minutes=42)  # the first: 12 minutes past its 30-minute timer

    page = await client.get(QUEUE)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert queue_ids(html) == [older, newer, acted]  # the rejected case has left the queue
    assert "3건 처리 중 · 기한 초과 1건" in html
    first = row_of(html, f"case-{older}")
    assert 'class="is-overdue"' in first and "12분 초과" in first
    assert "첫 보호 조치 기한" in first and "접수" in first and "기타" in first
    assert f'href="/console/cases/{older}?lang=ko"' in first
    second = row_of(html, f"case-{newer}")
    assert "8분 남음" in second and "is-overdue" not in second
    third = row_of(html, f"case-{acted}")
    assert "보이스피싱" in third and "보호 조치 완료" in third and "미배정" in third
    assert "피해구제 신청서 제출 기한" in third and "5,000,000원" in third
    assert 'href="/console/fraud-reports/new?lang=ko"' in html
    # Linked from the analyst pages' header, here and on the other analyst pages.
    assert 'href="/console/cases?lang=ko" aria-current="page"' in html
    assert 'href="/console/cases?lang=ko"' in (await client.get("/console/risk/reviews")).text

    english = (await client.get(f"{QUEUE}?lang=en")).text
    assert "12 min overdue" in english and "8 min left" in english
    assert "Voice phishing" in english and "KRW 5,000,000" in english


async def test_an_empty_queue_says_so(client: httpx.AsyncClient, at_now: Clock) -> None:
    page = await client.get(QUEUE)
    assert page.status_code == 200 and "처리 중인 사건이 없습니다." in page.text


# --- a case -------------------------------------------------------------------------------


async def test_the_case_page_shows_the_case_its_timers_actions_next_steps_and_trail(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    case_id = await file(services)
    page = await client.get(f"{QUEUE}/{case_id}")
    assert page.status_code == 200
    html = page.text
    assert case_id in html and "보호 조치 완료" in html and "보이스피싱" in html
    # Deadline: three business days after Friday 20 Nov in Seoul, i.e. the end of Wed 25 Nov.
    due = re.search(r'<div class="figure figure-due[^"]*" id="case-due">.*?</div>', html, re.S)
    assert due is not None
    assert "피해구제 신청서 제출 기한" in due.group(0)
    assert "2026년 11월 26일 00:00" in due.group(0) and "남음" in due.group(0)
    for text in ("<code>c-1</code>", "3333-01-1234567", "검찰 사칭 전화", "5,000,000원"):
        assert text in html, text
    assert "3333-05-7654321" in html and "110-123-456789" in html and "3,000,000원" in html
    # The SLAs: the first action was at once; the decision's clock runs.
    assert "충족" in row_of(html, "sla-first_action")
    assert "진행 중" in row_of(html, "sla-decision")
    # Every action, with who and why, and a lift form that needs a reason.
    suspension = action_id(html, "payment_suspension")
    row = row_of(html, f"action-{suspension}")
    assert "지급정지" in row and "090:3333-05-7654321" in row and "적용 중" in row
    assert "call centre" in row and "Refund Act" in row
    assert f'action="/console/cases/{case_id}/actions/{suspension}/lift"' in row
    assert 'name="reason"' in row and "required" in row
    assert "요청함" in row_of(html, f"action-{action_id(html, 'suspension_request')}")
    assert "이체 보류" in html
    # The steps the process allows from here, for a voice-phishing case.
    process = re.search(r'<section class="panel" id="process".*?</section>', html, re.S)
    assert process is not None
    states = re.findall(r'name="state" value="([^"]+)"', process.group(0))
    assert states == ["damage_relief_applied", "closed", "rejected"]
    # The trail, in order, intact.
    assert re.findall(r'<tr id="trail-(\d+)"', html)[:3] == ["1", "2", "3"]
    assert "지급정지 · 090:3333-05-7654321 (적용 중)" in html
    assert 'id="chain-broken"' not in html
    assert 'href="/console/cases?lang=ko" aria-current="page"' in html

    english = (await client.get(f"{QUEUE}/{case_id}?lang=en")).text
    assert "Payment suspension" in english and "Written application due" in english
    assert "26 Nov 2026, 00:00 KST" in english and "Damage relief applied" in english


async def test_a_lift_without_a_reason_is_refused_on_the_page(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    case_id = await file(services)
    html = (await client.get(f"{QUEUE}/{case_id}")).text
    suspension = action_id(html, "payment_suspension")
    url = f"{QUEUE}/{case_id}/actions/{suspension}/lift"

    for reason in ("", "  ", "no"):
        refused = await client.post(url, data={"reason": reason})
        assert refused.status_code == 422
        assert "text/html" in refused.headers["content-type"]
        row = row_of(refused.text, f"action-{suspension}")
        assert "해제 사유를 3자 이상 적어 주세요." in row and 'aria-invalid="true"' in row
    english = await client.post(url, data={"reason": "", "lang": "en"})
    assert "Give a reason of at least 3 characters for lifting." in english.text
    view = await services.cases.get(case_id)
    assert {a.id: a.status for a in view.actions}[suspension] == "active"

    lifted = await client.post(url, data={"reason": " 예금주가 정상 거래임을 증명함 "})
    assert lifted.status_code == 303
    assert lifted.headers["location"] == f"{QUEUE}/{case_id}?lang=ko&done=lifted#actions"
    page = (await client.get(lifted.headers["location"])).text
    assert "보호 조치를 해제했습니다." in page
    row = row_of(page, f"action-{suspension}")
    assert "해제됨" in row and "예금주가 정상 거래임을 증명함" in row and DEMO_USER in row
    assert "lift-form" not in row
    assert "지급정지 해제 · 사유: 예금주가 정상 거래임을 증명함" in page  # in the trail
    action = next(a for a in (await services.cases.get(case_id)).actions if a.id == suspension)
    assert (action.status, action.lifted_by) == ("lifted", DEMO_USER)

    again = await client.post(url, data={"reason": "once more"})
    assert again.status_code == 409 and "이미 해제된 보호 조치입니다" in again.text
    unknown = await client.post(
        f"{QUEUE}/{case_id}/actions/act_nope/lift", data={"reason": "x" * 5}
    )
    assert unknown.status_code == 404 and "이 사건에 그런 보호 조치가 없습니다" in unknown.text


async def test_the_process_form_moves_the_case_and_says_what_is_missing(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    case_id = await file(services, kind="lost_card", victim={"card_id": "card-1"})
    url = f"{QUEUE}/{case_id}/transition"

    skipped = await client.post(url, data={"state": "extinction_notice"})
    assert skipped.status_code == 409
    assert "&#39;protective_actions_taken&#39; 상태에서 &#39;extinction_notice&#39; 상태로" in (
        skipped.text
    )
    nothing = await client.post(url, data={})
    assert nothing.status_code == 422 and "다음 단계를 골라 주세요." in nothing.text
    no_amount = await client.post(url, data={"state": "refund_decided", "reason": "확인 완료"})
    assert no_amount.status_code == 422 and "환급 금액을 입력해 주세요." in no_amount.text
    assert "확인 완료</textarea>" in no_amount.text  # the form is kept
    bad_amount = await client.post(url, data={"state": "refund_decided", "refund_amount": "많이"})
    assert bad_amount.status_code == 422 and "환급 금액은 0 이상의 숫자로" in bad_amount.text
    no_reason = await client.post(url, data={"state": "rejected"})
    assert no_reason.status_code == 422 and "사유를 입력해 주세요." in no_reason.text
    assert (await services.cases.get(case_id)).case.state == "protective_actions_taken"

    moved = await client.post(
        url, data={"state": "refund_decided", "refund_amount": "1,200,000원", "lang": "en"}
    )
    assert moved.status_code == 303
    assert moved.headers["location"] == f"{QUEUE}/{case_id}?lang=en&done=moved#process"
    case = (await services.cases.get(case_id)).case
    assert (case.state, case.refund_amount) == ("refund_decided", 1_200_000)
    page = (await client.get(moved.headers["location"])).text
    assert "The case has moved." in page and "KRW 1,200,000" in page
    assert "Protective actions taken → Refund decided" in page
    assert re.findall(r'name="state" value="([^"]+)"', page) == ["closed", "rejected"]

    await client.post(url, data={"state": "closed"})
    closed = (await client.get(f"{QUEUE}/{case_id}")).text
    assert "종료된 사건이라 단계를 바꿀 수 없습니다." in closed and 'name="state"' not in closed
    assert case_id not in queue_ids((await client.get(QUEUE)).text)


async def test_assign_and_note_forms(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    case_id = await file(services)
    blank = await client.post(f"{QUEUE}/{case_id}/assign", data={"assignee": " "})
    assert blank.status_code == 422 and "담당자 이름을 적어 주세요" in blank.text
    assigned = await client.post(f"{QUEUE}/{case_id}/assign", data={"assignee": "analyst-kim"})
    assert assigned.status_code == 303 and assigned.headers["location"].endswith("#assign")
    empty = await client.post(f"{QUEUE}/{case_id}/notes", data={"text": ""})
    assert empty.status_code == 422 and "메모를 적어 주세요" in empty.text
    noted = await client.post(f"{QUEUE}/{case_id}/notes", data={"text": "피해자에게 회신함"})
    assert noted.status_code == 303

    view = await services.cases.get(case_id)
    assert view.case.assignee == "analyst-kim"
    assert [e.type for e in view.history][-2:] == ["assigned", "note"]
    page = (await client.get(f"{QUEUE}/{case_id}")).text
    assert "— → analyst-kim" in page and "피해자에게 회신함" in page
    assert "analyst-kim" in row_of((await client.get(QUEUE)).text, f"case-{case_id}")
    me = await client.post(f"{QUEUE}/{case_id}/assign", data={"assignee": DEMO_USER})
    assert me.status_code == 303
    assert (await services.cases.get(case_id)).case.assignee == DEMO_USER


async def test_a_tampered_trail_is_shown_as_such(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    case_id = await file(services)
    await services.cases.add_note(case_id, "called back", actor="analyst")
    assert 'id="chain-broken"' not in (await client.get(f"{QUEUE}/{case_id}")).text
    async with services.db.transaction() as session:
        await session.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id == case_id, CaseEvent.type == "note")
            .values(detail={"text": "nothing happened"})
        )
    seq = (await services.cases.get(case_id)).chain_broken_at
    assert seq is not None
    html = (await client.get(f"{QUEUE}/{case_id}")).text
    warning = re.search(r'<div id="chain-broken".*?</div>', html, re.S)
    assert warning is not None and 'role="alert"' in warning.group(0)
    assert f"{seq}번 항목부터 해시가 맞지 않아" in warning.group(0)
    assert 'class="trail-note is-broken"' in row_of(html, f"trail-{seq}")
    assert "is-broken" not in row_of(html, f"trail-{seq - 1}")


async def test_an_unknown_case_is_a_404_page_not_json(
    client: httpx.AsyncClient, at_now: Clock
) -> None:
    page = await client.get(f"{QUEUE}/FR-20260101-NOPE00")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "사건을 찾을 수 없습니다: FR-20260101-NOPE00" in page.text
    posted = await client.post(f"{QUEUE}/FR-20260101-NOPE00/notes", data={"text": "x"})
    assert posted.status_code == 404 and "사건을 찾을 수 없습니다" in posted.text


# --- the call centre's report form ----------------------------------------------------------


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "kind": "voice_phishing",
        "reporter_customer_id": "",
        "reporter_phone": "010-1234-5678",
        "victim_customer_id": "c-7",
        "victim_account": "3333-01-7777777",
        "victim_card_id": "",
        "suspect_accounts": "090 3333-05-7654321 3,000,000\r\n\r\n088:110-123-456789",
        "amount": "3,500,000",
        "occurred_at": "2026-11-20T21:10",
        "description": "대출을 해 준다는 전화를 받고 수수료를 보냈습니다.",
        "token": "tok-abcdefghijklmnop",
        "lang": "ko",
    }
    data.update(overrides)
    return data


async def test_the_report_form_files_a_case_and_shows_the_actions_taken(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    form = await client.get(NEW)
    assert form.status_code == 200
    assert 'name="token" value="' in form.text and '<option value="voice_phishing"' in form.text

    filed = await client.post(NEW, data=form_data())
    assert filed.status_code == 303
    location = filed.headers["location"]
    case_id = re.search(r"/console/cases/(FR-[^?]+)\?lang=ko&done=reported#actions", location)
    assert case_id is not None
    view = await services.cases.get(case_id.group(1))
    case = view.case
    assert (case.kind, case.reporter_phone, case.victim_customer_id) == (
        "voice_phishing",
        "010-1234-5678",
        "c-7",
    )
    assert (case.amount, case.currency, case.reported_by) == (3_500_000, "KRW", DEMO_USER)
    assert case.occurred_at == datetime(2026, 11, 20, 12, 10, tzinfo=UTC)  # 21:10 in Seoul
    assert [(a.bank_code, a.account_number, a.amount) for a in view.accounts] == [
        ("088", "110-123-456789", None),
        ("090", "3333-05-7654321", 3_000_000),
    ] or [(a.bank_code, a.account_number, a.amount) for a in view.accounts] == [
        ("090", "3333-05-7654321", 3_000_000),
        ("088", "110-123-456789", None),
    ]
    page = (await client.get(location)).text
    assert f"신고를 접수했습니다. 보호 조치 {len(view.actions)}건을 실행했습니다." in page
    assert "지급정지" in page and "타행 지급정지 요청" in page and "이체 보류" in page

    # The same form sent twice (a double click, a resend): one case.
    again = await client.post(NEW, data=form_data())
    assert again.status_code == 303 and again.headers["location"] == location
    # The same token with other contents: refused, and a fresh token comes with the form.
    other = await client.post(NEW, data=form_data(amount="1"))
    assert other.status_code == 409
    assert "같은 Idempotency-Key가 다른 요청 내용으로 이미 사용되었습니다." in other.text
    assert 'value="tok-abcdefghijklmnop"' not in other.text


async def test_the_report_form_shows_each_problem_at_its_field(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    bad = await client.post(
        NEW,
        data=form_data(
            kind="",
            reporter_phone="",
            victim_customer_id="",
            suspect_accounts="090 3333-05-7654321\n9 123456",
            amount="삼백만",
            occurred_at="2026-11-21T09:00",
            victim_card_id="4242 4242 4242 4242",
            description="카드 4242-4242-4242-4242 도 같이 썼어요",
        ),
    )
    assert bad.status_code == 422
    html = bad.text
    for text in (
        "입력한 내용을 확인해 주세요.",
        "신고 종류를 골라 주세요.",
        "연락받을 고객 번호나 전화번호 중 하나는 있어야 합니다.",
        "2번째 줄: 은행 코드 3자리",
        "금액은 0 이상의 숫자로",
        "피해 시각이 지금보다 나중입니다.",
        "카드번호는 적지 마세요.",
    ):
        assert text in html, text
    assert "090 3333-05-7654321\n9 123456</textarea>" in html  # what was typed is kept
    assert "4242 4242 4242 4242" not in html  # a card number is never shown back
    assert "4242-4242-4242-4242" not in html and "424242******4242" in html

    no_one = await client.post(NEW, data=form_data(reporter_phone=""))
    assert no_one.status_code == 422
    assert "연락받을 고객 번호나 전화번호 중 하나는 있어야 합니다." in no_one.text
    bad_phone = await client.post(NEW, data=form_data(reporter_phone="call me", lang="en"))
    assert bad_phone.status_code == 422 and "Write the phone number with digits" in bad_phone.text
    assert await services.cases.queue() == []


# --- who may open the pages, and the Origin check ------------------------------------------


async def test_case_pages_need_a_cases_key_outside_demo_mode(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    case_id = await file(services)
    services.settings.demo = False
    for path in (QUEUE, f"{QUEUE}/{case_id}", NEW):
        page = await client.get(path)
        assert page.status_code == 303, path
        assert page.headers["location"].startswith("/console/login?next=%2Fconsole%2F"), path
    for path, data in (
        (f"{QUEUE}/{case_id}/notes", {"text": "x"}),
        (f"{QUEUE}/{case_id}/assign", {"assignee": "x"}),
        (f"{QUEUE}/{case_id}/transition", {"state": "closed"}),
        (f"{QUEUE}/{case_id}/actions/act_x/lift", {"reason": "because"}),
        (NEW, form_data()),
    ):
        posted = await client.post(path, data=data)
        assert posted.status_code == 303, path
        assert posted.headers["location"].startswith("/console/login?next="), path
    view = await services.cases.get(case_id)
    assert (view.case.state, view.case.assignee) == ("protective_actions_taken", None)
    assert len(await services.cases.queue()) == 1

    # A key without the scope is sent to the login, like the other areas' pages ...
    client.cookies.set(COOKIE, await service_key(services, "risk"))
    assert (await client.get(QUEUE)).status_code == 303
    assert (await client.post(f"{QUEUE}/{case_id}/notes", data={"text": "x"})).status_code == 303
    # ... a key with it opens them and signs its changes.
    client.cookies.set(COOKIE, await service_key(services, "cases"))
    page = await client.get(QUEUE)
    assert page.status_code == 200 and queue_ids(page.text) == [case_id] and "로그아웃" in page.text
    assert (await client.get(f"{QUEUE}/{case_id}")).status_code == 200
    noted = await client.post(f"{QUEUE}/{case_id}/notes", data={"text": "회신함"})
    assert noted.status_code == 303
    assert (await services.cases.get(case_id)).history[-1].actor == "ops"  # the key's name
    # A cases key opens the case pages only.
    assert (await client.get("/console/risk/reviews")).status_code == 303


async def test_the_login_for_the_case_pages_asks_for_the_cases_scope(
    client: httpx.AsyncClient, services: Services
) -> None:
    services.settings.demo = False
    login = {"next": QUEUE}
    risk_only = await service_key(services, "risk")
    refused = await client.post("/console/login", data={**login, "key": risk_only})
    assert refused.status_code == 403 and "cases" in refused.text
    cases_key = await service_key(services, "cases")
    signed_in = await client.post("/console/login", data={**login, "key": cases_key})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == QUEUE


async def test_an_admin_key_opens_the_case_pages_from_another_machine(
    remote_client: httpx.AsyncClient, services: Services
) -> None:
    assert services.settings.demo  # demo mode, but not on loopback: a key is needed
    assert (await remote_client.get(QUEUE)).status_code == 303
    key = await service_key(services, "admin")
    await remote_client.post("/console/login", data={"key": key, "next": QUEUE})
    for path in (QUEUE, NEW):
        assert (await remote_client.get(path)).status_code == 200, path


async def test_a_cross_site_form_is_refused(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    case_id = await file(services)
    html = (await client.get(f"{QUEUE}/{case_id}")).text
    suspension = action_id(html, "payment_suspension")
    evil = {"Origin": "https://evil.example"}
    for path, data in (
        (f"{QUEUE}/{case_id}/actions/{suspension}/lift", {"reason": "because"}),
        (f"{QUEUE}/{case_id}/transition", {"state": "closed"}),
        (f"{QUEUE}/{case_id}/assign", {"assignee": "x"}),
        (f"{QUEUE}/{case_id}/notes", {"text": "x"}),
        (NEW, form_data()),
        (DEMO, {"customer": "demo-kim", "kind": "other"}),
    ):
        assert (await client.post(path, data=data, headers=evil)).status_code == 403, path
    view = await services.cases.get(case_id)
    assert all(a.status != "lifted" for a in view.actions) and view.case.assignee is None
    assert len(await services.cases.queue()) == 1


# --- the customer's demo report page --------------------------------------------------------


def demo_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer": "demo-kim",
        "kind": "voice_phishing",
        "bank_code": ["090", "088", ""],
        "account_number": ["3333-05-7654321", "110-123-456789", ""],
        "account_amount": ["1,000,000", "", ""],
        "amount": "1,000,000",
        "occurred_at": "2026-11-20T21:30",
        "victim_account": "",
        "card_id": "",
        "phone": "",
        "description": "검사라는 사람의 전화를 받고 돈을 보냈어요.",
        "token": "demo-abcdefghijklmnop",
        "lang": "ko",
    }
    data.update(overrides)
    return data


async def test_a_demo_customer_reports_fraud_and_sees_the_case_and_the_actions(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    page = await client.get(DEMO)
    assert page.status_code == 200
    html = page.text
    assert "사기 피해 신고" in html and "<code>demo-kim</code>" in html
    assert re.search(r'<option value="090"\s*>해태뱅크</option>', html)
    assert "전화로 속아 돈을 보냈어요 (보이스피싱)" in html
    assert "카드를 잃어버렸거나 도난당했어요" in html and 'value="demo-kim-card"' in html

    filed = await client.post(DEMO, data=demo_form())
    assert filed.status_code == 303
    found = re.fullmatch(
        r"/demo/report/(FR-20261120-[0-9A-Z]{6})\?lang=ko", filed.headers["location"]
    )
    assert found is not None
    case_id = found.group(1)
    view = await services.cases.get(case_id)
    assert (view.case.reporter_customer_id, view.case.victim_customer_id) == ("demo-kim",) * 2
    assert view.case.reported_by == "customer app (demo)"
    assert {(a.bank_code, a.account_number) for a in view.accounts} == {
        ("090", "3333-05-7654321"),
        ("088", "110-123-456789"),
    }

    received = (await client.get(filed.headers["location"])).text
    assert "신고가 접수되었습니다" in received and 'id="case-number"' in received
    assert case_id in received
    taken = re.search(r'<ul id="actions-taken".*?</ul>', received, re.S)
    assert taken is not None
    assert "지급정지" in taken.group(0)
    assert "상대 계좌 해태뱅크 3333-05-7654321에서 돈이 빠져나가지 못하게 했습니다." in taken.group(
        0
    )
    assert "신한은행 110-123-456789 계좌의 지급정지를 그 은행에 요청했습니다." in taken.group(0)
    assert "이체를 잠시 보류" in taken.group(0)
    # The written application is due at the end of Wednesday 25 November.
    assert "2026년 11월 25일까지 피해구제 신청서를 제출해" in received
    assert 'href="/demo/inbox/demo-kim?lang=ko"' in received

    english = (await client.get(f"/demo/report/{case_id}?lang=en")).text
    assert "Your report has been received" in english and "Payment suspension" in english
    assert "Money can no longer leave the account Haetae Bank 3333-05-7654321." in english
    assert "by 25 Nov 2026" in english

    # The same form again (a double tap): the same case.
    again = await client.post(DEMO, data=demo_form())
    assert again.headers["location"] == filed.headers["location"]


async def test_the_demo_report_form_shows_problems_in_the_customers_words(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    bad = await client.post(
        DEMO,
        data=demo_form(
            kind="", bank_code=["", "088", ""], account_number=["3333", "110-123-456789", ""]
        ),
    )
    assert bad.status_code == 422
    assert "신고 종류를 골라 주세요." in bad.text
    assert "1번째 계좌: 은행을 고르고 계좌번호를" in bad.text
    assert 'value="110-123-456789"' in bad.text  # kept
    english = await client.post(DEMO, data=demo_form(amount="lots", lang="en"))
    assert english.status_code == 422 and "Write the amount as a number" in english.text
    assert await services.cases.queue() == []


async def test_the_demo_report_page_is_for_demo_customers_in_demo_mode_on_loopback(
    client: httpx.AsyncClient,
    remote_client: httpx.AsyncClient,
    services: Services,
    at_now: Clock,
) -> None:
    assert (await client.get(f"{DEMO}?customer=c-1")).status_code == 404
    assert (await client.post(DEMO, data=demo_form(customer="c-1"))).status_code == 404
    real = await file(services)  # a real customer's case is not shown on the demo page
    assert (await client.get(f"{DEMO}/{real}")).status_code == 404
    assert (await remote_client.get(DEMO)).status_code == 404
    assert (await remote_client.post(DEMO, data=demo_form())).status_code == 404
    services.settings.demo = False
    assert (await client.get(DEMO)).status_code == 404
    assert (await client.post(DEMO, data=demo_form())).status_code == 404
    assert len(await services.cases.queue()) == 1


async def test_console_home_links_to_the_case_pages(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    assert 'href="/console/cases?lang=ko"' in html and "사기 사건 대기열" in html
    assert 'href="/demo/report?lang=ko"' in html and "사기 피해 신고 데모" in html
    english = (await client.get("/?lang=en")).text
    assert "Fraud case queue" in english and "Fraud report demo" in english


async def test_every_analyst_page_links_every_other_by_its_label(client: httpx.AsyncClient) -> None:
    """The analyst header's links, each named from the label tables in both languages."""
    links = {
        "/console/certificates": ("인증서 만료", "Certificates"),
        "/console/risk/rules": ("위험 규칙", "Risk rules"),
        "/console/risk/reviews": ("검토 대기열", "Review queue"),
        "/console/cases": ("사기 사건", "Fraud cases"),
    }
    for page in links:
        for lang, index in (("ko", 0), ("en", 1)):
            html = (await client.get(f"{page}?lang={lang}")).text
            nav = html[html.index('class="analyst-nav"') :]
            nav = nav[: nav.index("</nav>")]
            for href, names in links.items():
                assert f'href="{href}?lang={lang}"' in nav, (page, href)
                assert f">{names[index]}</a>" in nav, (page, names[index])
