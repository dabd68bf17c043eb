"""The financial safety report over a simulated year written into a real database: its
figures against plain SQL over the same tables, the PDF's pages (text and chart images),
the HTML, the API's formats, scopes and errors, and the CLI."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
import sqlalchemy as sa
from PIL import Image
from typer.testing import CliRunner

from haetae.cases.models import Case, ProtectiveAction
from haetae.catalog import format_money
from haetae.cli import app as cli_app
from haetae.db.base import UtcDateTime
from haetae.db.engine import sync_url
from haetae.errors import HaetaeError
from haetae.merchants.service import get_or_create_merchant
from haetae.notify.models import Delivery, Notification
from haetae.payments.models import Payment, PaymentChallenge
from haetae.risk.decisions.models import DecisionRecord
from haetae.safety_report.period import parse_period
from haetae.services import Services
from tests.conftest import Clock
from tests.helpers import auth, service_key

SEOUL = ZoneInfo("Asia/Seoul")
YEAR_START = datetime(2026, 1, 1, tzinfo=SEOUL)
YEAR_END = datetime(2027, 1, 1, tzinfo=SEOUL)
NOW = datetime(2027, 1, 10, 3, 0, tzinfo=UTC)
KINDS = ("payment", "transfer", "login", "payee_added")
RULES = {
    "block": ("reported_account", "blocked_card", "vp-large-new-payee"),
    "review": ("new-payee-large-transfer", "high-score"),
    "challenge": ("many-cards-one-device", "night-login"),
}
REPORT_KINDS = ("voice_phishing", "smishing", "account_takeover", "card_fraud")
CHANNELS = ("inbox", "push", "sms", "email")
CHART_NAMES = ("reports", "detected", "prevented", "response", "channels", "rules")


def seoul(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SEOUL)


def _decision(i: int, at: datetime, kind: str, decision: str, amount: int, **extra: Any) -> Any:
    hits: list[dict[str, Any]] = extra.pop("rule_hits", [])
    return DecisionRecord(
        id=f"rsk_t{i:06d}",
        event_id=f"rev_t{i:06d}",
        kind=kind,
        customer_id=f"cust-{i % 37}",
        occurred_at=at,
        decided_at=at,
        amount=amount,
        currency=extra.pop("currency", "KRW"),
        event={"kind": kind, "amount": amount},
        decision=decision,
        score=90 if decision != "allow" else 10,
        reasons=[],
        rule_hits=hits,
        features={"amount": amount},
        **extra,
    )


async def seed_year(services: Services) -> None:
    """A year of history: decisions every month (some at the Seoul month edges), cases with
    their actions, notices with deliveries per channel, challenged payments."""
    rng = random.Random(2026)
    rows: list[Any] = []
    i = 0
    for month in range(1, 13):
        start = seoul(2026, month, 1)
        end = seoul(2026 + month // 12, month % 12 + 1, 1)
        for _ in range(20 + 3 * month):
            i += 1
            at = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
            kind = rng.choice(KINDS)
            decision = rng.choices(("allow", "challenge", "review", "block"), (70, 10, 10, 10))[0]
            amount = rng.randrange(10_000, 3_000_000) if kind in ("payment", "transfer") else 0
            hits: list[dict[str, Any]] = []
            if decision != "allow" and rng.random() < 0.8:
                hits.append(
                    {"name": rng.choice(RULES[decision]), "version": 1, "decision": decision}
                )
                if rng.random() < 0.25:  # an allow rule beside it: never counted as a catch
                    hits.append({"name": "trusted-device", "version": 2, "decision": "allow"})
            label = "fraud" if decision in ("review", "block") and rng.random() < 0.4 else None
            currency = "USD" if rng.random() < 0.03 else "KRW"
            rows.append(
                _decision(
                    i, at, kind, decision, amount, rule_hits=hits, label=label, currency=currency
                )
            )
    edges = [
        (seoul(2026, 1, 1, 0, 30), "block", 50_000),  # January in Seoul, 2025 in UTC
        (seoul(2025, 12, 31, 23, 59), "block", 70_000),  # before the year
        (seoul(2027, 1, 1, 0, 0), "block", 90_000),  # after it
        (seoul(2026, 3, 31, 23, 59), "block", 31_000),  # March
        (seoul(2026, 4, 1, 0, 1), "block", 41_000),  # April (still March 31 in UTC)
    ]
    for at, decision, amount in edges:
        i += 1
        hit = [{"name": "reported_account", "version": 1, "decision": "block"}]
        rows.append(_decision(i, at, "transfer", decision, amount, rule_hits=hit))

    for n in range(40):
        received = YEAR_START + timedelta(seconds=rng.randrange(360 * 86400))
        acted = None if n % 13 == 5 else received + timedelta(seconds=rng.randrange(20, 5400))
        case_id = f"case_t{n:04d}"
        rows.append(
            Case(
                id=case_id,
                kind=REPORT_KINDS[n % len(REPORT_KINDS)],
                state="received",
                amount=rng.randrange(0, 5_000_000),
                currency="KRW",
                received_at=received,
                first_action_at=acted,
                refund_amount=rng.randrange(0, 100_000) if n % 3 == 0 else None,
                updated_at=received,
            )
        )
        if acted is not None:
            for a, kind in enumerate(("payment_suspension", "mule_list_entry")[: 1 + n % 2]):
                rows.append(
                    ProtectiveAction(
                        id=f"act_t{n:04d}{a}",
                        case_id=case_id,
                        type=kind,
                        target=f"target-{n}",
                        status="active",
                        reason="report",
                        taken_by="haetae",
                        taken_at=acted,
                    )
                )

    for n in range(90):
        created = YEAR_START + timedelta(seconds=rng.randrange(364 * 86400))
        notice_id = f"ntf_t{n:04d}"
        rows.append(
            Notification(
                id=notice_id,
                customer_id=f"cust-{n}",
                kind="fraud_report_received",
                category="security" if n % 4 else "transactional",
                locale="ko",
                context={},
                created_at=created,
            )
        )
        for c, channel in enumerate(CHANNELS):
            if c and (n + c) % 3 == 0:
                continue
            status = ("delivered", "sent", "failed", "suppressed", "queued")[(n + c) % 5]
            if channel == "push" and status == "sent":
                status = "delivered"  # a push still "sent" would time out and fall back
            rows.append(
                Delivery(
                    id=f"dlv_t{n:04d}{c}",
                    notification_id=notice_id,
                    channel=channel,
                    status=status,
                    # Out of the running dispatcher's reach: the figures must hold still.
                    next_attempt_at=datetime(2099, 1, 1, tzinfo=UTC),
                    created_at=created,
                    updated_at=created,
                )
            )
    async with services.db.transaction() as session:
        shop = await get_or_create_merchant(session, "report-shop", card_policy="none")
        challenges = [
            # (created, status, source, expires after creation, amount): counted or not
            (seoul(2026, 2, 3, 10), "failed", "risk", timedelta(minutes=5), 120_000),  # yes
            (seoul(2026, 6, 9, 22), "pending", "risk", timedelta(minutes=5), 230_000),  # yes
            (seoul(2026, 6, 10, 9), "passed", "risk", timedelta(minutes=5), 340_000),  # no
            (seoul(2026, 7, 1, 9), "failed", "issuer", timedelta(minutes=5), 450_000),  # no
            (seoul(2026, 12, 31, 23), "pending", "risk", timedelta(days=30), 560_000),  # no
        ]
        for n, (created, status, source, expiry, amount) in enumerate(challenges):
            payment_id = f"pay_t{n:04d}"
            rows.append(
                Payment(
                    id=payment_id,
                    merchant_id=shop.id,
                    order_id=f"order-{n}",
                    customer_id=f"cust-{n}",
                    amount=amount,
                    currency="KRW",
                    status="approved" if status == "passed" else "challenge_required",
                    risk_decision="challenge",
                    created_at=created,
                )
            )
            rows.append(
                PaymentChallenge(
                    payment_id=payment_id,
                    code_hash="0" * 64,
                    status=status,
                    source=source,
                    expires_at=created + expiry,
                    created_at=created,
                )
            )
        # Parents first: the tables have foreign keys but the models no relationships.
        parents = (Case, Notification, Payment)
        session.add_all([row for row in rows if isinstance(row, parents)])
        await session.flush()
        session.add_all([row for row in rows if not isinstance(row, parents)])


# --- the figures, computed apart with plain SQL -----------------------------------------------


@dataclass
class Expected:
    scored: int
    detected: int
    blocked: int
    confirmed_fraud: int
    blocked_amount: int
    abandoned_amount: int
    detected_by_month_kind: dict[tuple[str, str], int]
    rules: dict[str, int]
    received: int
    acted: int
    median: float
    p90: float
    deliveries: dict[tuple[str, str], int]
    notices: int

    @property
    def money_prevented(self) -> int:
        return self.blocked_amount + self.abandoned_amount


@pytest.fixture
def sql(database_url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = -(-q * len(ordered) // 100)
    return ordered[int(rank) - 1]


def expected_for(conn: sa.Connection, start: datetime, end: datetime) -> Expected:
    span = {"s": start, "e": end}

    def query(text: str, **more: Any) -> list[Any]:
        statement = sa.text(text).bindparams(
            sa.bindparam("s", type_=UtcDateTime()), sa.bindparam("e", type_=UtcDateTime())
        )
        if "now" in more:
            statement = statement.bindparams(sa.bindparam("now", type_=UtcDateTime()))
        return list(conn.execute(statement, {**span, **more}).all())

    in_period = "decided_at >= :s AND decided_at < :e"
    decisions = query(
        f"SELECT kind, decision, decided_at, label FROM risk_decisions WHERE {in_period}"
    )
    by_month: dict[tuple[str, str], int] = defaultdict(int)
    for kind, decision, decided_at, _ in decisions:
        if decision != "allow":
            moment = (
                decided_at
                if isinstance(decided_at, datetime)
                else datetime.fromisoformat(decided_at)
            )
            local = moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(SEOUL)
            by_month[(f"{local:%Y-%m}", kind)] += 1
    blocked_amount = query(
        "SELECT COALESCE(SUM(amount), 0) FROM risk_decisions "
        f"WHERE {in_period} AND decision = 'block' AND currency = 'KRW'"
    )[0][0]
    abandoned = query(
        "SELECT COALESCE(SUM(p.amount), 0) FROM payments p "
        "JOIN payment_challenges c ON c.payment_id = p.id "
        "WHERE p.created_at >= :s AND p.created_at < :e AND c.source = 'risk' "
        "AND p.currency = 'KRW' "
        "AND (c.status = 'failed' OR (c.status = 'pending' AND c.expires_at <= :now))",
        now=NOW,
    )[0][0]
    rules: dict[str, int] = defaultdict(int)
    for (hits,) in query(
        f"SELECT rule_hits FROM risk_decisions WHERE {in_period} AND decision <> 'allow'"
    ):
        for hit in hits if isinstance(hits, list) else json.loads(hits):
            if hit["decision"] != "allow":
                rules[hit["name"]] += 1
    cases = query(
        "SELECT received_at, first_action_at FROM cases "
        "WHERE received_at >= :s AND received_at < :e"
    )
    waits = [
        (_aware(acted) - _aware(received)).total_seconds()
        for received, acted in cases
        if acted is not None
    ]
    deliveries = {
        (channel, status): count
        for channel, status, count in query(
            "SELECT d.channel, d.status, COUNT(*) FROM deliveries d "
            "JOIN notifications n ON n.id = d.notification_id "
            "WHERE n.created_at >= :s AND n.created_at < :e GROUP BY d.channel, d.status"
        )
    }
    notices = query("SELECT COUNT(*) FROM notifications WHERE created_at >= :s AND created_at < :e")
    return Expected(
        scored=len(decisions),
        detected=sum(1 for _, d, _, _ in decisions if d != "allow"),
        blocked=sum(1 for _, d, _, _ in decisions if d == "block"),
        confirmed_fraud=sum(1 for *_, label in decisions if label == "fraud"),
        blocked_amount=int(blocked_amount),
        abandoned_amount=int(abandoned),
        detected_by_month_kind=dict(by_month),
        rules=dict(rules),
        received=len(cases),
        acted=len(waits),
        median=_nearest_rank(waits, 50) if waits else 0.0,
        p90=_nearest_rank(waits, 90) if waits else 0.0,
        deliveries=deliveries,
        notices=int(notices[0][0]),
    )


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture
async def seeded(services: Services, clock: Clock) -> str:
    """The seeded year, the clock in January 2027, and a key with scope ``reports``."""
    await seed_year(services)
    clock.fixed = NOW
    return await service_key(services, "reports")


async def get_report(client: httpx.AsyncClient, key: str, **params: str) -> httpx.Response:
    return await client.get("/v1/reports/safety", params=params, headers=auth(key))


# --- the figures ------------------------------------------------------------------------------


async def test_the_figures_match_the_database(
    seeded: str, client: httpx.AsyncClient, sql: sa.Connection
) -> None:
    response = await get_report(client, seeded, period="2026", format="json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    report = response.json()
    expected = expected_for(sql, YEAR_START, YEAR_END)
    summary = report["summary"]

    assert report["period"] == "2026" and report["complete"] is True
    assert report["buckets"] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert summary["events_scored"] == expected.scored
    assert summary["detected"] == expected.detected
    assert summary["blocked"] == expected.blocked
    assert summary["confirmed_fraud"] == expected.confirmed_fraud
    assert summary["money_prevented"] == expected.money_prevented
    # 120,000 failed + 230,000 abandoned; not the passed, the issuer's, or the still-open one.
    assert expected.abandoned_amount == 350_000
    prevented = report["prevented"]
    assert sum(p["blocked_amount"] for p in prevented) == expected.blocked_amount
    assert sum(p["abandoned_amount"] for p in prevented) == expected.abandoned_amount

    detected: dict[tuple[str, str], int] = defaultdict(int)
    for cell in report["decisions"]:
        if cell["decision"] != "allow":
            detected[(cell["bucket"], cell["kind"])] += cell["count"]
    assert dict(detected) == expected.detected_by_month_kind
    # The Seoul month edges: 00:30 on 1 January is January; 00:01 on 1 April is April.
    blocked_transfers = {
        c["bucket"]: c["amount"]
        for c in report["decisions"]
        if c["kind"] == "transfer" and c["decision"] == "block"
    }
    assert blocked_transfers["2026-01"] >= 50_000
    assert "2025-12" not in blocked_transfers and "?" not in blocked_transfers

    top = sorted(expected.rules.items(), key=lambda kv: (-kv[1], kv[0]))
    assert [(r["name"], r["caught"]) for r in report["rules"]] == top[:10]
    assert "trusted-device" not in {r["name"] for r in report["rules"]}

    assert summary["reports_received"] == expected.received
    assert summary["reports_acted"] == expected.acted
    assert summary["median_first_action_seconds"] == pytest.approx(expected.median)
    assert summary["p90_first_action_seconds"] == pytest.approx(expected.p90)
    assert sum(c["awaiting"] for c in report["cases"]) == expected.received - expected.acted

    deliveries = {(d["channel"], d["status"]): d["count"] for d in report["deliveries"]}
    assert deliveries == expected.deliveries
    assert summary["notices"] == expected.notices
    assert summary["deliveries_reached"] == sum(
        n for (_, status), n in expected.deliveries.items() if status in ("sent", "delivered")
    )


async def test_a_month_is_cut_into_seoul_days_and_a_quarter_into_months(
    seeded: str, client: httpx.AsyncClient, sql: sa.Connection
) -> None:
    march = (await get_report(client, seeded, period="2026-03", format="json")).json()
    assert march["buckets"] == [f"2026-03-{d:02d}" for d in range(1, 32)]
    expected = expected_for(sql, seoul(2026, 3, 1), seoul(2026, 4, 1))
    assert march["summary"]["events_scored"] == expected.scored
    assert march["summary"]["money_prevented"] == expected.money_prevented
    last_day = [
        c for c in march["decisions"] if c["bucket"] == "2026-03-31" and c["decision"] == "block"
    ]
    assert any(c["amount"] >= 31_000 for c in last_day)

    quarter = (await get_report(client, seeded, period="2026-q1", format="json")).json()
    assert quarter["period"] == "2026-Q1"
    assert quarter["buckets"] == ["2026-01", "2026-02", "2026-03"]
    expected = expected_for(sql, seoul(2026, 1, 1), seoul(2026, 4, 1))
    assert quarter["summary"]["events_scored"] == expected.scored
    assert quarter["summary"]["reports_received"] == expected.received


# --- the PDF and the HTML ------------------------------------------------------------------------


def _pdf_pages(content: bytes) -> tuple[str, list[tuple[Image.Image, list[Image.Image]]]]:
    """The PDF's text, and for each page its picture with the chart images cut out of it."""
    scale = 2.0
    document = pdfium.PdfDocument(content)
    text = []
    pages = []
    try:
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            text.append(textpage.get_text_range())
            textpage.close()
            picture = page.render(scale=scale).to_pil().convert("L")
            _, height = page.get_size()
            charts = []
            for image in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]):
                left, bottom, right, top = image.get_bounds()
                box = (
                    left * scale,
                    (height - top) * scale,
                    right * scale,
                    (height - bottom) * scale,
                )
                charts.append(picture.crop(tuple(int(v) for v in box)))
            pages.append((picture, charts))
            page.close()
    finally:
        document.close()
    return "\n".join(text), pages


def _drawn(region: Image.Image) -> bool:
    """Not blank: a fair share of the area is ink, in more than a couple of tones."""
    histogram = region.histogram()
    ink = sum(histogram[:235]) / (region.width * region.height)
    return ink > 0.03 and sum(1 for n in histogram if n) > 8


async def test_the_pdf_has_the_tables_the_charts_and_the_figures(
    seeded: str, client: httpx.AsyncClient, sql: sa.Connection
) -> None:
    response = await get_report(client, seeded, period="2026", format="pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="safety-report-2026-ko.pdf"' in response.headers["content-disposition"]
    text, pages = _pdf_pages(response.content)
    expected = expected_for(sql, YEAR_START, YEAR_END)

    for heading in (
        "2026 금융안전보고서",
        "해태 금융안전시스템 소개",
        "예방",
        "탐지",
        "대응",
        "금융사기 동향",
        "탐지와 차단",
        "예방 금액",
        "신속 접수 및 후속 조치",
        "고객 알림",
        "가장 많이 잡아낸 규칙",
        "피해 신고 방법",
        "용어와 산출 기준",
    ):
        assert heading in text, heading
    for column in ("점검한 거래", "추가 인증", "검토 보류", "중앙값", "90번째 백분위", "채널"):
        assert column in text, column
    assert f"{expected.scored:,}" in text
    assert f"{expected.detected:,}" in text
    assert format_money(expected.money_prevented, "KRW", "ko") in text
    assert format_money(expected.blocked_amount, "KRW", "ko") in text
    top_rule = max(expected.rules.items(), key=lambda kv: (kv[1], kv[0]))[0]
    assert top_rule in text
    assert "1599-0000" in text  # how to report: the call centre from the settings

    charts = [chart for _, on_page in pages for chart in on_page]
    assert len(charts) == len(CHART_NAMES)
    for chart in charts:
        assert chart.width > 300 and chart.height > 100
        assert _drawn(chart)
    for picture, _ in pages:
        assert _drawn(picture.crop((0, 0, picture.width, picture.height // 2)))


async def test_the_html_has_inline_svg_charts_in_either_language(
    seeded: str, client: httpx.AsyncClient, sql: sa.Connection
) -> None:
    korean = await get_report(client, seeded, period="2026")
    assert korean.status_code == 200
    assert korean.headers["content-type"].startswith("text/html")
    page = korean.text
    assert '<html lang="ko">' in page and "NanumGothic" in page
    for name in CHART_NAMES:
        assert f'id="chart-{name}"' in page, name
    assert page.count("<svg") == len(CHART_NAMES)
    assert "보이스피싱" in page and "앱 알림함" in page

    english = await get_report(client, seeded, period="2026", locale="en")
    page = english.text
    assert '<html lang="en">' in page
    for heading in (
        "Financial Safety Report 2026",
        "The Haetae financial safety system",
        "Prevention",
        "Detection",
        "Response",
        "Money prevented",
        "The rules that caught most",
        "How to report fraud",
    ):
        assert heading in page, heading
    expected = expected_for(sql, YEAR_START, YEAR_END)
    assert format_money(expected.money_prevented, "KRW", "en") in page
    assert "보이스피싱" not in page and "Voice phishing" in page


async def test_a_period_with_nothing_recorded_still_renders(
    seeded: str, client: httpx.AsyncClient
) -> None:
    response = await get_report(client, seeded, period="2019-07", format="json")
    assert response.json()["summary"]["events_scored"] == 0
    html = (await get_report(client, seeded, period="2019-07")).text
    assert "이 기간에는 기록이 없습니다." in html
    pdf = await get_report(client, seeded, period="2019", format="pdf", locale="en")
    text, _ = _pdf_pages(pdf.content)
    assert "Nothing was recorded in this period." in text


# --- the API's errors and scopes ----------------------------------------------------------------


@pytest.mark.parametrize("period", ["26", "2026-13", "2026-Q5", "2026-00", "1999", "abc", ""])
async def test_a_bad_period_is_a_422_naming_the_field(
    seeded: str, client: httpx.AsyncClient, period: str
) -> None:
    response = await get_report(client, seeded, period=period)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "period"
    if period:
        assert error["code"] == "report_period_invalid"
        assert period in error["message"]


async def test_a_bad_format_or_locale_names_its_field(
    seeded: str, client: httpx.AsyncClient
) -> None:
    for params, field in (({"format": "xls"}, "format"), ({"locale": "ja"}, "locale")):
        response = await get_report(client, seeded, period="2026", **params)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == field
    missing = await client.get("/v1/reports/safety", headers=auth(seeded))
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "period"


async def test_only_keys_with_the_reports_scope_get_the_report(
    services: Services, client: httpx.AsyncClient
) -> None:
    anonymous = await client.get("/v1/reports/safety", params={"period": "2026"})
    assert anonymous.status_code == 401
    risk_only = await service_key(services, "risk")
    forbidden = await get_report(client, risk_only, period="2026")
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"


def test_periods_are_seoul_calendar_spans() -> None:
    year = parse_period("2026")
    assert (year.start_utc, year.end_utc) == (
        datetime(2025, 12, 31, 15, tzinfo=UTC),
        datetime(2026, 12, 31, 15, tzinfo=UTC),
    )
    assert len(year.buckets) == 12 and year.kind == "year"
    february = parse_period("2028-02")
    assert len(february.buckets) == 29 and february.buckets[-1].key == "2028-02-29"
    q4 = parse_period(" 2026-Q4 ")
    assert q4.text == "2026-Q4" and q4.end == seoul(2027, 1, 1)
    with pytest.raises(HaetaeError) as raised:
        parse_period("2026-W10")
    assert raised.value.field == "period"


# --- the CLI -------------------------------------------------------------------------------------


async def test_the_cli_writes_the_report_and_prints_its_path(
    seeded: str, database_url: str, tmp_path: Path
) -> None:
    env = {"HAETAE_DATABASE_URL": database_url, "HAETAE_DATA_DIR": str(tmp_path / "cli")}
    target = tmp_path / "out" / "report.pdf"

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli_app, ["report", "safety", *args], env=env)

    # The CLI runs its own work synchronously, as it does from a shell: give it a thread.
    done = await asyncio.to_thread(
        run, "--period", "2026", "--format", "pdf", "--locale", "en", "--output", str(target)
    )
    assert done.exit_code == 0, done.output
    assert done.stdout.strip().splitlines()[-1] == str(target)
    text, pages = _pdf_pages(await asyncio.to_thread(target.read_bytes))
    assert "Financial Safety Report 2026" in text and len(pages) >= 4

    default = await asyncio.to_thread(run, "--period", "2026-03")
    assert default.exit_code == 0, default.output
    written = Path(default.stdout.strip().splitlines()[-1])
    assert written == tmp_path / "cli" / "reports" / "safety-report-2026-03-ko.html"
    assert "2026년 3월 금융안전보고서" in await asyncio.to_thread(written.read_text)

    bad = await asyncio.to_thread(run, "--period", "2026-13")
    assert bad.exit_code != 0 and "--period" in bad.output
    bad_format = await asyncio.to_thread(run, "--period", "2026", "--format", "docx")
    assert bad_format.exit_code != 0


def test_the_chart_pictures_are_not_empty() -> None:
    from haetae.safety_report.charts import Series, horizontal_bars, stacked_bars

    png = stacked_bars("t", ["1월", "2월"], [Series("결제", [3, 5], "#3182f6")], fmt="png")
    assert isinstance(png, bytes)
    assert _drawn(Image.open(io.BytesIO(png)).convert("L"))
    svg = horizontal_bars("h", ["a"], [Series("x", [2.5], "#03b26c")], stacked=True)
    assert isinstance(svg, str) and svg.startswith("<svg") and 'id="chart-h"' in svg


async def test_the_report_index_changes_the_plan_not_the_figures(
    seeded: str, client: httpx.AsyncClient, sql: sa.Connection
) -> None:
    """Migration 0009 adds an index leading with (kind, decision, decided_at) and covering
    the figures' columns, which turns the decision query into one index read per bucket.
    Without it (a schema someone trimmed) the report takes the one-scan path; the figures
    must be the same either way."""
    from haetae.safety_report.metrics import has_report_index

    assert has_report_index(sql)
    with_index = (await get_report(client, seeded, period="2026", format="json")).json()
    sql.execute(sa.text("DROP INDEX ix_risk_decisions_report"))
    sql.commit()
    try:
        assert not has_report_index(sql)
        without_index = (await get_report(client, seeded, period="2026", format="json")).json()
    finally:
        if sql.dialect.name == "postgresql":
            ddl = (
                "CREATE INDEX ix_risk_decisions_report ON risk_decisions "
                "(kind, decision, decided_at) INCLUDE (currency, label, amount, rule_hits)"
            )
        else:
            ddl = (
                "CREATE INDEX ix_risk_decisions_report ON risk_decisions "
                "(kind, decision, decided_at, currency, label, amount, rule_hits)"
            )
        sql.execute(sa.text(ddl))
        sql.commit()
    assert without_index == with_index
