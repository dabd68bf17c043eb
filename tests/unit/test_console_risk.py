"""The console's risk pages on a real database through the real app: the rules page (the
form, errors at their line and column, enable/disable, backtests), the review queue and a
decision's details, who may open them, the Origin check on their forms, and the demo's
rules and review decisions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import polars as pl
import pytest

from haetae.app import create_app
from haetae.console.access import COOKIE, DEMO_USER
from haetae.demo import (
    DEMO_REVIEW_TRANSFERS,
    DEMO_RISK_CUSTOMER,
    DEMO_RULES,
    seed_demo,
    seed_demo_reviews,
    seed_demo_rules,
)
from haetae.risk.decisions.service import record_decision
from haetae.risk.events import Payee, RiskEvent
from haetae.risk.rules.history import FrameHistory
from haetae.services import Services
from tests.conftest import Clock
from tests.helpers import service_key

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 10:00 in Seoul
RULES = "/console/risk/rules"
REVIEWS = "/console/risk/reviews"
NEW_PAYEE_RULE = "review if payee.is_new and amount >= 1_000_000"
TRANSFER = {"amount": 2_000_000, "payee.is_new": True}


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


def hit_names(services: Services, kind: str = "transfer", **values: Any) -> list[str]:
    return [hit.name for hit in services.rules.evaluate(kind, {**TRANSFER, **values})]


async def transfer(services: Services, amount: int, account: str, at: datetime) -> str:
    assessment = await services.risk.evaluate(
        RiskEvent(
            kind="transfer",
            customer_id="c-1",
            occurred_at=at,
            amount=amount,
            payee=Payee(bank_code="088", account_number=account),
        )
    )
    return assessment.decision_id


async def reviewed(services: Services, clock: Clock, *amounts: int) -> list[str]:
    """Transfers to new payees, an hour apart until NOW, that the new-payee rule sends to
    review (each decided when it happened, so the queue's order is theirs)."""
    await services.rules.save("new-payee", NEW_PAYEE_RULE, author="test", kinds=["transfer"])
    ids = []
    for n, amount in enumerate(amounts):
        clock.fixed = NOW - timedelta(hours=len(amounts) - n)
        ids.append(await transfer(services, amount, f"110-000-{n:06d}", clock.fixed))
    clock.fixed = NOW
    return ids


def queue_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="review-([^"]+)"', html)


# --- the rules page ---------------------------------------------------------------------


async def test_rules_page_lists_the_rules_with_their_state(
    client: httpx.AsyncClient, services: Services
) -> None:
    await services.rules.save("big", "block if amount > 3_000_000", author="t", kinds=["transfer"])
    await services.rules.save("logins", "review if customer.login_count_1h >= 3", author="t")
    await services.rules.set_enabled("logins", False)

    page = await client.get(RULES)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert '<html lang="ko">' in html and "위험 규칙" in html
    big = re.search(r'<tr id="rule-big".*?</tr>', html, re.S)
    assert big is not None
    for text in ("차단", "block if amount &gt; 3_000_000", "이체", "사용 중", "끄기"):
        assert text in big.group(0), text
    assert 'action="/console/risk/rules/big/disable"' in big.group(0)
    logins = re.search(r'<tr id="rule-logins" class="is-off".*?</tr>', html, re.S)
    assert logins is not None
    assert "모든 이벤트" in logins.group(0) and "꺼짐" in logins.group(0)
    assert 'action="/console/risk/rules/logins/enable"' in logins.group(0)
    assert '<script src="/static/risk-rules.js"' in html
    # Linked from the analyst pages' header.
    assert 'href="/console/risk/reviews?lang=ko"' in html

    english = (await client.get(f"{RULES}?lang=en")).text
    assert '<html lang="en">' in english and "Block" in english and "Every kind" in english
    js = await client.get("/static/risk-rules.js")
    assert js.status_code == 200 and "setSelectionRange" in js.text


async def test_a_rule_added_through_the_form_takes_effect_and_gets_versions(
    client: httpx.AsyncClient, services: Services
) -> None:
    assert hit_names(services) == []
    form = {"name": "new-payee", "rule": NEW_PAYEE_RULE, "kinds": ["transfer"], "lang": "ko"}
    saved = await client.post(RULES, data=form)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{RULES}?lang=ko&saved=new-payee#rule-new-payee"
    assert hit_names(services) == ["new-payee"]
    assert hit_names(services, kind="login") == []  # for transfers only

    shown = await client.get(saved.headers["location"])
    assert "규칙 new-payee을(를) 저장했습니다 (버전 1)." in shown.text

    # Edit: the form comes filled in; a changed text (CRLF as browsers send it) is version 2.
    edit = (await client.get(f"{RULES}?edit=new-payee")).text
    assert 'value="new-payee"' in edit and f">{NEW_PAYEE_RULE}</textarea>" in edit.replace(
        "&gt;", ">"
    )
    assert 'value="transfer" checked' in edit
    stricter = "review if payee.is_new\r\n  and amount >= 5_000_000"
    again = await client.post(RULES, data={**form, "rule": stricter, "kinds": []})
    assert again.status_code == 303
    rule, versions = await services.rules.get("new-payee")
    assert (rule.version, rule.text, rule.kinds) == (2, stricter.replace("\r\n", "\n"), None)
    assert versions[0].created_by == DEMO_USER
    assert hit_names(services) == [] and hit_names(services, amount=6_000_000) == ["new-payee"]


async def test_an_invalid_rule_is_shown_inline_at_its_line_and_column(
    client: httpx.AsyncClient, services: Services
) -> None:
    text = "review if amount > 1\n  and payee.is_neww"
    page = await client.post(RULES, data={"name": "typo", "rule": text})
    assert page.status_code == 422
    html = page.text
    assert "2행 7열" in html
    assert "규칙에 오류가 있습니다 (2행 7열): unknown name &#39;payee.is_neww&#39;" in html
    assert 'data-error-line="2" data-error-column="7"' in html
    assert 'aria-invalid="true"' in html
    excerpt = re.search(r'<pre class="error-excerpt"[^>]*>(.*?)</pre>', html, re.S)
    assert excerpt is not None and excerpt.group(1) == "  and payee.is_neww\n      ^"
    assert "payee.is_neww</textarea>" in html  # the analyst's text is kept
    assert await services.rules.all() == []

    english = await client.post(RULES, data={"name": "typo", "rule": text, "lang": "en"})
    assert "line 2, column 7" in english.text
    assert "The rule is not valid at line 2, column 7" in english.text

    bad_name = await client.post(RULES, data={"name": "no spaces", "rule": NEW_PAYEE_RULE})
    assert bad_name.status_code == 422 and "이름은 영문이나 숫자로 시작하고" in bad_name.text
    bad_kind = await client.post(
        RULES, data={"name": "x", "rule": NEW_PAYEE_RULE, "kinds": ["teleport"]}
    )
    assert bad_kind.status_code == 422 and "알 수 없는 이벤트 종류" in bad_kind.text
    empty = await client.post(RULES, data={"name": "x", "rule": "  "})
    assert empty.status_code == 422 and "규칙을 입력해 주세요." in empty.text
    # Empty fields (a browser sends them as "") are the page's errors too, not JSON.
    blank = await client.post(RULES, data={"name": "", "rule": ""})
    assert blank.status_code == 422 and "이름은 영문이나" in blank.text
    assert "규칙을 입력해 주세요." in blank.text
    assert await services.rules.all() == []


async def test_rules_are_switched_off_and_on_from_the_page(
    client: httpx.AsyncClient, services: Services
) -> None:
    await services.rules.save("new-payee", NEW_PAYEE_RULE, author="t")
    off = await client.post(f"{RULES}/new-payee/disable", data={"lang": "en"})
    assert off.status_code == 303
    assert off.headers["location"] == f"{RULES}?lang=en#rule-new-payee"
    assert hit_names(services) == []
    assert "Disabled" in (await client.get(off.headers["location"])).text
    on = await client.post(f"{RULES}/new-payee/enable")
    assert on.status_code == 303 and hit_names(services) == ["new-payee"]
    unknown = await client.post(f"{RULES}/nope/enable")
    assert unknown.status_code == 404


def labelled_history() -> pl.DataFrame:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(1, 7)],
            "kind": ["transfer", "transfer", "transfer", "transfer", "payment", "login"],
            "occurred_at": [at.replace(day=d) for d in range(1, 7)],
            "amount": [5_000_000, 4_000_000, 3_500_000, 100_000, 9_000_000, 0],
            "currency": ["KRW"] * 6,
            "label": [1, 0, 1, 1, 0, 0],
            "payee.is_new": [True, True, True, True, None, None],
        },
        schema_overrides={"label": pl.Int8, "occurred_at": pl.Datetime("us", "UTC")},
    )


async def test_backtest_shows_the_figures_for_the_forms_text(
    client: httpx.AsyncClient, services: Services
) -> None:
    services.rules.history = FrameHistory(labelled_history())
    rule = "block if amount > 3_000_000 and payee.is_new"
    page = await client.post(f"{RULES}/backtest", data={"name": "", "rule": rule})
    assert page.status_code == 200
    html = page.text
    figures = dict(
        re.findall(r'<div class="figure" id="(bt_\w+)"><dt>[^<]*</dt><dd>([^<]*)</dd>', html)
    )
    assert figures == {
        "bt_events": "6",
        "bt_hits": "3",
        "bt_fraud_caught": "2 / 3",
        "bt_false_positives": "1",
        "bt_unlabelled": "0",
        "bt_amount_at_stake": "12,500,000원",
        "bt_amount_caught": "8,500,000원",
        "bt_precision": "66.7%",
        "bt_recall": "66.7%",
    }
    assert f">{rule.replace('>', '&gt;')}</textarea>" in html  # the form keeps the text
    assert await services.rules.all() == []  # a backtest saves nothing

    only_logins = await client.post(
        f"{RULES}/backtest", data={"rule": rule, "kinds": ["login"], "lang": "en"}
    )
    assert '<div class="figure" id="bt_precision"><dt>Precision</dt><dd>—</dd>' in only_logins.text
    invalid = await client.post(f"{RULES}/backtest", data={"rule": "block if amount >"})
    assert invalid.status_code == 422 and 'data-error-line="1"' in invalid.text


async def test_backtest_without_history_says_so_politely(
    client: httpx.AsyncClient, services: Services
) -> None:
    page = await client.post(f"{RULES}/backtest", data={"rule": NEW_PAYEE_RULE})
    assert page.status_code == 200
    assert "죄송합니다. 백테스트에 쓸 과거 이벤트 이력이 아직 없어" in page.text
    assert "백테스트를 실행할 수 없습니다" in page.text  # the catalog's text, below
    assert 'class="figure"' not in page.text
    english = await client.post(f"{RULES}/backtest", data={"rule": NEW_PAYEE_RULE, "lang": "en"})
    assert "Sorry: there is no event history" in english.text


# --- the review queue and a decision's details ---------------------------------------------


async def test_review_queue_lists_open_reviews_oldest_first(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    ids = await reviewed(services, at_now, 1_200_000, 2_500_000)
    await transfer(services, 50_000, "110-999-999999", NOW)  # allowed: not in the queue
    # A decision with the model's reasons, as the engine stores them.
    async with services.db.transaction() as session:
        scored = record_decision(
            session,
            event_row={"kind": "login", "customer_id": "c-2", "occurred_at": NOW},
            decision="review",
            score=83,
            reasons=[
                {"code": f"r{n}", "feature": "f", "ko": f"사유 {n}", "en": f"reason {n}"}
                for n in range(1, 5)
            ],
            rule_hits=[{"name": "high-score", "version": 2, "decision": "review"}],
            model_version="m-1",
            features={"customer.login_count_1h": 7.0},
            now=NOW + timedelta(minutes=1),
        )
    page = await client.get(REVIEWS)
    assert page.status_code == 200
    html = page.text
    assert queue_ids(html) == [*ids, scored]
    assert "3건 대기 중" in html
    first = re.search(rf'<tr id="review-{ids[0]}".*?</tr>', html, re.S)
    assert first is not None
    row = first.group(0)
    for text in (
        "2026년 11월 23일 08:00",
        "이체",
        "<code>c-1</code>",
        "1,200,000원",
        "new-payee v1",
    ):
        assert text in row, text
    assert f'href="/console/risk/decisions/{ids[0]}?lang=ko">자세히</a>' in row
    assert 'name="label" value="fraud"' in row and 'name="label" value="genuine"' in row
    last = re.search(rf'<tr id="review-{scored}".*?</tr>', html, re.S)
    assert last is not None
    assert "사유 1" in last.group(0) and "사유 3" in last.group(0)
    assert "사유 4" not in last.group(0)  # the top three
    assert "high-score v2" in last.group(0) and ">83<" in last.group(0)

    english = (await client.get(f"{REVIEWS}?lang=en")).text
    assert "reason 1" in english and "KRW 1,200,000" in english and "Transfer" in english


async def test_labelling_from_the_queue_takes_the_decision_off_it(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    first, second = await reviewed(services, at_now, 1_200_000, 2_500_000)
    response = await client.post(
        f"{REVIEWS}/{first}/label",
        data={"label": "fraud", "note": " customer says not them ", "lang": "ko"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{REVIEWS}?lang=ko&labelled=fraud"
    page = await client.get(response.headers["location"])
    assert queue_ids(page.text) == [second]
    assert "판정을 저장했습니다: 사기" in page.text
    record = await services.decisions.get(first)
    assert (record.label, record.review_status, record.labelled_by, record.note) == (
        "fraud",
        "labelled",
        DEMO_USER,
        "customer says not them",
    )
    await client.post(f"{REVIEWS}/{second}/label", data={"label": "genuine"})
    assert (await services.decisions.get(second)).note is None
    empty = await client.get(REVIEWS)
    assert queue_ids(empty.text) == [] and "검토를 기다리는 이벤트가 없습니다." in empty.text

    history = await services.decisions.labelled_history()
    assert sorted(history["label"].to_list()) == [0, 1]
    bad = await client.post(f"{REVIEWS}/{first}/label", data={"label": "maybe"})
    assert bad.status_code == 422
    missing = await client.post(f"{REVIEWS}/rsk_nope/label", data={"label": "fraud"})
    assert missing.status_code == 404


async def test_decision_details_show_the_features_and_the_event(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    [decision_id] = await reviewed(services, at_now, 1_800_000)
    page = await client.get(f"/console/risk/decisions/{decision_id}")
    assert page.status_code == 200
    html = page.text
    assert "판단 상세" in html and decision_id in html and "검토 대기 중" in html
    features = re.search(r'<table id="features".*?</table>', html, re.S)
    assert features is not None
    assert re.search(r"<code>payee.is_new</code></th><td[^>]*>true</td>", features.group(0))
    assert re.search(r"<code>amount</code></th><td[^>]*>1,800,000</td>", features.group(0))
    event = re.search(r'<table id="event".*?</table>', html, re.S)
    assert event is not None and "110-000-000000" in event.group(0)
    assert f'action="/console/risk/reviews/{decision_id}/label"' in html

    await client.post(f"{REVIEWS}/{decision_id}/label", data={"label": "genuine", "note": "ok"})
    after = (await client.get(f"/console/risk/decisions/{decision_id}?lang=en")).text
    assert "Genuine" in after and DEMO_USER in after and "label-form" not in after
    assert (await client.get("/console/risk/decisions/rsk_nope")).status_code == 404


# --- who may open the pages, and the Origin check ------------------------------------------


async def test_risk_pages_need_a_risk_key_outside_demo_mode(
    client: httpx.AsyncClient, services: Services, at_now: Clock
) -> None:
    [decision_id] = await reviewed(services, at_now, 1_200_000)
    services.settings.demo = False
    for path in (RULES, REVIEWS, f"/console/risk/decisions/{decision_id}"):
        page = await client.get(path)
        assert page.status_code == 303, path
        assert page.headers["location"].startswith("/console/login?next=%2Fconsole%2Frisk%2F")
    form = await client.get("/console/login?next=/console/risk/rules")
    assert "risk 권한이 있는 서비스 API 키" in form.text
    posted = await client.post(f"{REVIEWS}/{decision_id}/label", data={"label": "fraud"})
    assert posted.status_code == 303
    assert posted.headers["location"] == "/console/login?next=%2Fconsole%2Frisk%2Freviews&lang=ko"
    saved = await client.post(RULES, data={"name": "x", "rule": NEW_PAYEE_RULE})
    assert saved.status_code == 303
    assert [r.name for r in await services.rules.all()] == ["new-payee"]

    login = {"next": REVIEWS}
    certificates_only = await service_key(services, "certificates")
    refused = await client.post("/console/login", data={**login, "key": certificates_only})
    assert refused.status_code == 403 and "risk" in refused.text

    key = await service_key(services, "risk")
    signed_in = await client.post("/console/login", data={**login, "key": key})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == REVIEWS
    assert COOKIE in signed_in.cookies
    page = await client.get(REVIEWS)
    assert page.status_code == 200 and queue_ids(page.text) == [decision_id]
    assert "로그아웃" in page.text
    labelled = await client.post(f"{REVIEWS}/{decision_id}/label", data={"label": "fraud"})
    assert labelled.status_code == 303
    assert (await services.decisions.get(decision_id)).labelled_by == "ops"  # the key's name
    # A risk key opens the risk pages only.
    assert (await client.get("/console/certificates")).status_code == 303


async def test_an_admin_key_opens_every_analyst_page_from_another_machine(
    remote_client: httpx.AsyncClient, services: Services
) -> None:
    assert services.settings.demo  # demo mode, but not on loopback: a key is needed
    assert (await remote_client.get(RULES)).status_code == 303
    key = await service_key(services, "admin")
    await remote_client.post("/console/login", data={"key": key, "next": RULES})
    for path in (RULES, REVIEWS, "/console/certificates"):
        assert (await remote_client.get(path)).status_code == 200, path


async def test_a_cross_site_form_is_refused(client: httpx.AsyncClient, services: Services) -> None:
    evil = {"Origin": "https://evil.example"}
    form = {"name": "x", "rule": NEW_PAYEE_RULE}
    refused = await client.post(RULES, data=form, headers=evil)
    assert refused.status_code == 403
    assert await services.rules.all() == []
    for path in (f"{RULES}/x/disable", f"{REVIEWS}/rsk_x/label", "/console/logout"):
        assert (await client.post(path, data={"label": "fraud"}, headers=evil)).status_code == 403
    null_origin = await client.post(RULES, data=form, headers={"Origin": "null"})
    assert null_origin.status_code == 403
    login = await client.post("/console/login", data={"key": "hae_x"}, headers=evil)
    assert login.status_code == 403

    same_site = await client.post(RULES, data=form, headers={"Origin": "http://haetae.test"})
    assert same_site.status_code == 303
    assert [r.name for r in await services.rules.all()] == ["x"]


# --- the console's home page and the demo data ---------------------------------------------


async def test_console_home_links_to_the_risk_pages(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    assert 'href="/console/risk/rules?lang=ko"' in html and "위험 규칙" in html
    assert 'href="/console/risk/reviews?lang=ko"' in html and "검토 대기열" in html
    certificates = (await client.get("/console/certificates")).text
    assert 'href="/console/risk/rules?lang=ko"' in certificates


async def test_demo_rules_and_reviews_are_seeded_once(services: Services, at_now: Clock) -> None:
    assert await seed_demo_rules(services.rules) == len(DEMO_RULES)
    assert await seed_demo_reviews(services.db, services.risk, NOW) == len(DEMO_REVIEW_TRANSFERS)
    rules = {rule.name: rule for rule in await services.rules.all()}
    assert set(rules) == {name for name, _, _ in DEMO_RULES}
    assert rules["many-cards-one-device"].decision == "challenge"
    queue = await services.decisions.queue("open")
    assert [r.customer_id for r in queue] == [DEMO_RISK_CUSTOMER] * len(DEMO_REVIEW_TRANSFERS)
    assert all([hit["name"] for hit in r.rule_hits] == ["new-payee-large-transfer"] for r in queue)

    assert await seed_demo_rules(services.rules) == 0
    assert await seed_demo_reviews(services.db, services.risk, NOW) == 0
    keys = await seed_demo(services)  # the whole demo: the rules and reviews are there already
    assert keys.admin_key
    assert len(await services.decisions.queue("open")) == len(DEMO_REVIEW_TRANSFERS)

    # A restart prints new keys and revokes those it printed before.
    again = await seed_demo(services)
    assert await services.api_keys.verify(keys.admin_key) is None
    assert await services.api_keys.verify(keys.merchant_key) is None
    admin = await services.api_keys.verify(again.admin_key)
    assert admin is not None and admin.allows("admin")


async def test_an_analysts_rules_are_never_replaced_by_the_demos(services: Services) -> None:
    await services.rules.save("mine", NEW_PAYEE_RULE, author="analyst")
    assert await seed_demo_rules(services.rules) == 0
    assert [r.name for r in await services.rules.all()] == ["mine"]
