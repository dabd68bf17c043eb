"""The console's certificate page (weekly expiries, the chart, the notices sent), its login,
the demo app inbox page and the demo certificates, on a real database through the real app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from haetae.app import create_app
from haetae.certificates.models import Certificate
from haetae.certificates.schedule import CertificateKind
from haetae.certificates.service import NewCertificate
from haetae.console.access import COOKIE
from haetae.console.certificate_stats import recent_notices, weekly_expiries
from haetae.console.charts import weekly_expiry_svg
from haetae.demo import DEMO_WEEKLY_EXPIRIES, seed_demo_certificates
from haetae.services import Services
from haetae.timezones import SEOUL
from tests.conftest import Clock
from tests.helpers import service_key

# Monday 23 November 2026, 10:00 in Seoul: ISO week 2026-W48.
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def seoul(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SEOUL).astimezone(UTC)


async def register(
    services: Services,
    customer_id: str,
    not_after: datetime,
    kind: CertificateKind = "joint",
    device_id: str = "phone-1",
) -> str:
    new = NewCertificate(
        customer_id=customer_id,
        kind=kind,
        device_id=device_id,
        issued_at=not_after - timedelta(days=365),
        not_after=not_after,
    )
    registered = await services.certificates.register(new)
    return registered.certificate.id


@pytest.fixture
def at_start(clock: Clock) -> Clock:
    clock.fixed = START
    return clock


async def _client_from(services: Services, host: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services.settings, services), client=(host, 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://haetae.test") as c:
        yield c


@pytest.fixture
async def remote_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on another machine, not on the platform's loopback."""
    async for c in _client_from(services, "203.0.113.9"):
        yield c


# --- the weekly counts ------------------------------------------------------------------


async def test_weekly_expiries_count_active_certificates_per_seoul_iso_week(
    services: Services, at_start: Clock
) -> None:
    monday = date(2026, 11, 23)
    await register(services, "c-1", seoul(monday + timedelta(days=2), 15))
    await register(services, "c-2", seoul(monday + timedelta(days=3), 9), kind="financial")
    # Sunday 23:30 in Seoul is still week 1 (it is Sunday 14:30 UTC) ...
    await register(services, "c-3", seoul(monday + timedelta(days=13), 23, 30))
    # ... and Monday 00:30 in Seoul is week 2, though still Sunday in UTC.
    await register(services, "c-4", seoul(monday + timedelta(days=14), 0, 30))
    await register(services, "c-5", seoul(monday + timedelta(weeks=11, days=6), 12))
    await register(services, "c-6", seoul(monday + timedelta(weeks=12), 12))  # week 13: out
    revoked = await register(services, "c-7", seoul(monday + timedelta(weeks=3), 12))
    await services.certificates.revoke(revoked)
    renewed = await register(services, "c-8", seoul(monday + timedelta(weeks=4), 12))
    await services.certificates.renew(
        renewed, not_after=seoul(monday + timedelta(weeks=5, days=1), 12), method="app"
    )
    soon = await register(services, "c-9", seoul(monday, 12))  # today, in two hours

    async with services.db.sessions() as session:
        weeks = await weekly_expiries(session, START)
    assert len(weeks) == 12
    assert [w.monday for w in weeks] == [monday + timedelta(weeks=n) for n in range(12)]
    assert weeks[0].iso_week == "2026-W48" and weeks[5].iso_week == "2026-W53"
    assert weeks[6].iso_week == "2027-W01"
    counts = {w.iso_week: (w.joint, w.financial) for w in weeks if w.total}
    assert counts == {
        "2026-W48": (2, 1),  # c-1, c-9 and the financial c-2
        "2026-W49": (1, 0),
        "2026-W50": (1, 0),
        "2026-W53": (1, 0),  # c-8 after its renewal; the revoked c-7 is not counted
        "2027-W06": (1, 0),  # the 12th week (2026 has a W53)
    }

    # Once expired, a certificate needs nothing: it drops out of this week.
    async with services.db.sessions() as session:
        later = await weekly_expiries(session, seoul(monday, 13))
    assert (later[0].joint, later[0].financial) == (1, 1)
    assert soon


async def test_no_certificate_gives_twelve_empty_weeks(services: Services) -> None:
    async with services.db.sessions() as session:
        weeks = await weekly_expiries(session, START)
    assert len(weeks) == 12 and all(w.total == 0 for w in weeks)
    assert weeks[0].monday == date(2026, 11, 23)


# --- the chart --------------------------------------------------------------------------


async def test_chart_is_an_svg_with_a_bar_per_week_and_kind(
    services: Services, at_start: Clock
) -> None:
    monday = date(2026, 11, 23)
    await register(services, "c-1", seoul(monday + timedelta(days=1), 12))
    await register(services, "c-2", seoul(monday + timedelta(days=2), 12), kind="financial")
    await register(services, "c-3", seoul(monday + timedelta(weeks=2), 12))
    async with services.db.sessions() as session:
        weeks = await weekly_expiries(session, START)

    svg = weekly_expiry_svg(weeks)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg  # inline in the page
    assert len(re.findall(r'<g id="bar-joint-\d+"', svg)) == 12
    assert len(re.findall(r'<g id="bar-financial-\d+"', svg)) == 12
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    weeks_shown = [t for t in texts if re.fullmatch(r"W\d\d", t)]
    assert weeks_shown == ["W48", "W49", "W50", "W51", "W52", "W53"] + [
        f"W{n:02d}" for n in range(1, 7)
    ]
    assert "11/23" in texts and "2/1" in texts  # the Mondays under the week numbers
    # A total over each week that has one: 2 in W48, 1 in W50.
    assert len(re.findall(r'<g id="total-\d+"', svg)) == 2
    assert not re.search(r"[가-힣]", svg)  # Korean stays in the HTML: no font needed
    assert weekly_expiry_svg(weeks) == svg  # the same data draws the same image


# --- the notices ------------------------------------------------------------------------


async def test_recent_notices_with_each_channels_delivery(
    services: Services, at_start: Clock
) -> None:
    expiring = await register(services, "c-1", START + timedelta(days=5))  # D-7 goes now
    at_start.fixed = START + timedelta(minutes=1)
    await services.certificates.renew(expiring, not_after=START + timedelta(days=370), method="app")
    at_start.fixed = START + timedelta(minutes=2)
    await services.certificates.reissue(expiring, device_id="phone-new", device_name="SM-A515F")
    await register(services, "c-2", START + timedelta(days=200))  # no reminder due: no notice

    async with services.db.sessions() as session:
        notices = await recent_notices(session)
        one = await recent_notices(session, limit=1)
    assert [n.kind for n in notices] == [
        "certificate_reissued",
        "certificate_renewed",
        "certificate_expiring",
    ]
    assert {n.customer_id for n in notices} == {"c-1"}
    assert [n.created_at for n in notices] == [
        START + timedelta(minutes=2),
        START + timedelta(minutes=1),
        START,
    ]
    assert [n.kind for n in one] == ["certificate_reissued"]
    reissued = notices[0].deliveries
    assert set(reissued) == {"inbox", "push", "sms", "email"}  # a security notice: every channel
    assert reissued["inbox"].status == "delivered"
    # The bank gave no contact details for c-1: nothing to send the others to.
    assert all(reissued[c].status == "suppressed" and reissued[c].reason for c in ("sms", "email"))


# --- the page and who may see it ----------------------------------------------------------


async def test_certificate_page_in_demo_mode_on_loopback(
    client: httpx.AsyncClient, services: Services, at_start: Clock
) -> None:
    await register(services, "c-1", START + timedelta(days=5))
    response = await client.get("/console/certificates")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert '<html lang="ko">' in html and "인증서 만료 현황" in html
    assert '<figure id="expiry-chart"' in html and "<svg" in html
    assert "12주 합계 1건" in html
    rows = re.findall(r"<tr>\s*<td class=\"nowrap\">", html)
    assert len(rows) == 1 and "<code>c-1</code>" in html and "만료 안내" in html
    assert "전달됨" in html  # the inbox delivery

    english = await client.get("/console/certificates?lang=en")
    assert '<html lang="en">' in english.text and "Expiry reminder" in english.text


async def test_certificate_page_needs_a_certificates_key_outside_demo_mode(
    client: httpx.AsyncClient, services: Services
) -> None:
    services.settings.demo = False
    page = await client.get("/console/certificates")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=%2Fconsole%2Fcertificates&lang=ko"
    form = await client.get(page.headers["location"])
    assert form.status_code == 200 and 'name="key"' in form.text
    assert 'type="password"' in form.text and 'value="/console/certificates"' in form.text

    login = {"next": "/console/certificates"}
    wrong = await client.post("/console/login", data={**login, "key": "hae_nope"})
    assert wrong.status_code == 401 and "API 키가 없거나 올바르지 않습니다." in wrong.text
    assert COOKIE not in wrong.cookies

    notify_only = await service_key(services, "notify")
    forbidden = await client.post("/console/login", data={**login, "key": notify_only})
    assert forbidden.status_code == 403 and "certificates" in forbidden.text

    key = await service_key(services, "certificates")
    signed_in = await client.post("/console/login", data={**login, "key": key})
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/console/certificates"
    cookie = signed_in.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/console", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http here; over https it is Secure

    shown = await client.get("/console/certificates")
    assert shown.status_code == 200 and "<svg" in shown.text and "로그아웃" in shown.text

    out = await client.post("/console/logout")
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert (await client.get("/console/certificates")).status_code == 303


async def test_login_never_redirects_off_the_console(
    client: httpx.AsyncClient, services: Services
) -> None:
    key = await service_key(services, "certificates")
    for target in ("https://evil.example/", "//evil.example/console/x", "/checkout"):
        response = await client.post("/console/login", data={"key": key, "next": target})
        assert response.status_code == 303 and response.headers["location"] == "/"


async def test_demo_mode_opens_the_page_only_to_loopback(
    remote_client: httpx.AsyncClient, services: Services
) -> None:
    assert services.settings.demo
    response = await remote_client.get("/console/certificates")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")
    key = await service_key(services, "admin")  # admin allows every scope
    await remote_client.post("/console/login", data={"key": key})
    assert (await remote_client.get("/console/certificates")).status_code == 200


# --- the demo app inbox ------------------------------------------------------------------


async def test_demo_inbox_page_shows_banner_popup_and_inbox(
    client: httpx.AsyncClient, services: Services, at_start: Clock
) -> None:
    await seed_demo_certificates(services.db, services.certificates, START)
    response = await client.get("/demo/inbox/demo-kim")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="ko">' in html and "알림함" in html
    banner = re.search(r'<div class="banner is-info"[^>]*>(.*?)</div>', html, re.S)
    assert banner and "공동인증서가 5일 후" in banner.group(1)
    assert '<dialog id="login-popup"' in html and "닫기" in html
    assert '<script src="/static/demo-inbox.js"' in html
    assert 'class="inbox-item"' in html and "공동인증서 만료 5일 전 안내" in html

    english = await client.get("/demo/inbox/demo-kim", headers={"Accept-Language": "en"})
    assert '<html lang="en">' in english.text and "Close" in english.text
    assert "expires in 5 days" in english.text  # the live banner, in the page's language
    assert '<html lang="en">' in (await client.get("/demo/inbox/demo-kim?lang=en")).text

    alert = await client.get("/demo/inbox/demo-lee")
    assert 'class="banner is-alert"' in alert.text and "SM-A515F" in alert.text
    assert 'class="popup is-alert"' in alert.text

    quiet = await client.get("/demo/inbox/demo-nobody")
    assert quiet.status_code == 200 and "login-popup" not in quiet.text
    js = await client.get("/static/demo-inbox.js")
    assert js.status_code == 200 and "showModal" in js.text


async def test_demo_inbox_page_is_for_demo_customers_in_demo_mode_only(
    client: httpx.AsyncClient, services: Services
) -> None:
    assert (await client.get("/demo/inbox/cust-1")).status_code == 404
    services.settings.demo = False
    assert (await client.get("/demo/inbox/demo-kim")).status_code == 404


# --- the demo data ----------------------------------------------------------------------


async def test_demo_certificates_are_seeded_once(services: Services, at_start: Clock) -> None:
    first = await seed_demo_certificates(services.db, services.certificates, START)
    assert first == 3 + sum(DEMO_WEEKLY_EXPIRIES)
    again = await seed_demo_certificates(services.db, services.certificates, START)
    assert again == 0
    async with services.db.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(Certificate))
        weeks = await weekly_expiries(session, START)
        notices = await recent_notices(session, limit=100)
    assert count == first
    # demo-kim (5 days) is in the chart as well as the spread ones; the renewed and the
    # reissued certificates moved a year and more away.
    assert sum(w.total for w in weeks) == sum(DEMO_WEEKLY_EXPIRIES) + 1
    assert sum(1 for w in weeks if w.total) >= 10
    kinds = {n.kind for n in notices}
    assert kinds == {"certificate_expiring", "certificate_renewed", "certificate_reissued"}
