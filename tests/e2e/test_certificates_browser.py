"""The certificate page and the demo app inbox in a real browser against `haetae serve --demo`
(which seeds the demo certificates: demo-kim's expires in 5 days)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_certificate_page_shows_the_chart_and_the_notices(page: Page) -> None:
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto("/console/certificates")
    expect(page.get_by_role("heading", name="인증서 만료 현황")).to_be_visible()

    chart = page.locator("#expiry-chart svg")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    expect(page.locator('#expiry-chart g[id^="bar-joint-"]')).to_have_count(12)
    expect(page.locator('#expiry-chart g[id^="bar-financial-"]')).to_have_count(12)

    notices = page.locator("#notices tbody tr")
    expect(notices.first).to_be_visible()
    assert notices.count() >= 3
    table = page.locator("#notices")
    for kind in ("만료 안내", "갱신 알림", "재발급 보안 알림"):
        expect(table.get_by_text(kind).first).to_be_visible()
    expect(table.get_by_text("전달됨").first).to_be_visible()
    page.screenshot(path="/tmp/console-certificates.png", full_page=True)

    page.get_by_text("표로 보기").click()
    expect(page.locator(".chart-data tbody tr")).to_have_count(12)


def test_demo_inbox_shows_the_banner_and_the_login_popup(page: Page) -> None:
    page.goto("/demo/inbox/demo-kim")
    popup = page.get_by_role("dialog")
    expect(popup).to_be_visible()
    expect(popup).to_contain_text("공동인증서가 5일 후")
    page.screenshot(path="/tmp/demo-inbox-popup.png", full_page=True)
    popup.get_by_role("button", name="닫기").click()
    expect(popup).to_be_hidden()

    banner = page.locator(".banner").first
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("공동인증서가 5일 후")
    expect(page.locator("#inbox-items .inbox-item").first).to_contain_text(
        "공동인증서 만료 5일 전 안내"
    )
    page.screenshot(path="/tmp/demo-inbox.png", full_page=True)


def test_demo_inbox_in_english_and_the_security_alert(page: Page) -> None:
    page.goto("/demo/inbox/demo-lee?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    popup = page.get_by_role("dialog")
    expect(popup).to_be_visible()
    popup.get_by_role("button", name="Close").click()
    expect(popup).to_be_hidden()
    expect(page.locator(".banner.is-alert")).to_contain_text("SM-A515F")
    page.screenshot(path="/tmp/demo-inbox-alert.png", full_page=True)


def test_console_home_links_to_both_pages(page: Page) -> None:
    page.goto("/")
    page.get_by_role("link", name=re.compile("인증서 만료 현황")).click()
    expect(page).to_have_url(re.compile(r"/console/certificates"))
    page.go_back()
    page.get_by_role("link", name=re.compile("고객 앱 알림함 데모")).click()
    expect(page).to_have_url(re.compile(r"/demo/inbox/demo-kim"))
    expect(page.get_by_role("dialog")).to_be_visible()
