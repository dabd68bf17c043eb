"""The risk rules page and the review queue in a real browser against `haetae serve --demo`
(which seeds the example rules and three transfers of demo-choi waiting for review)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_rules_page_adds_a_rule_shows_errors_and_backtests(page: Page) -> None:
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto("/console/risk/rules")
    expect(page.get_by_role("heading", name="위험 규칙", exact=True)).to_be_visible()
    expect(page.locator("#rule-vp-large-new-payee")).to_contain_text("차단")
    expect(page.locator("#rule-new-payee-large-transfer")).to_contain_text("사용 중")

    # A typo: the error is under the field, at its line and column, the cursor on it.
    page.get_by_label("규칙 이름").fill("e2e-many-logins")
    page.locator("#rule-text").fill("review if customer.login_count_1h >= 10\n  and is_nigth")
    page.get_by_label("로그인", exact=True).check()
    page.get_by_role("button", name="저장", exact=True).click()
    error = page.locator("#rule-text-error")
    expect(error).to_contain_text("2행 7열")
    expect(error).to_contain_text("is_nigth")
    expect(page.locator("#rule-text")).to_be_focused()
    expect(page.get_by_label("로그인", exact=True)).to_be_checked()  # the form is kept
    page.screenshot(path="/tmp/console-risk-rule-error.png", full_page=True)

    # The corrected text: a backtest first, over the demo's simulated history ...
    page.locator("#rule-text").fill("review if customer.login_count_1h >= 10\n  and is_night")
    page.get_by_role("button", name="백테스트", exact=True).click()
    expect(page.locator("#backtest")).to_contain_text("살펴본 이벤트")
    expect(page.locator("#rule-text")).to_have_value(
        "review if customer.login_count_1h >= 10\n  and is_night"
    )

    # ... then saved: it is listed, for logins only, and can be switched off.
    page.get_by_role("button", name="저장", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("e2e-many-logins")
    row = page.locator("#rule-e2e-many-logins")
    expect(row).to_contain_text("customer.login_count_1h >= 10")
    expect(row).to_contain_text("로그인")
    expect(row).to_contain_text("사용 중")
    page.screenshot(path="/tmp/console-risk-rules.png", full_page=True)
    row.get_by_role("button", name=re.compile("^끄기")).click()
    expect(page.locator("#rule-e2e-many-logins")).to_contain_text("꺼짐")


def test_review_queue_labels_one_fraud_and_it_leaves_the_queue(page: Page) -> None:
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto("/console/risk/reviews")
    expect(page.get_by_role("heading", name="검토 대기열", exact=True)).to_be_visible()
    rows = page.locator("#queue tbody tr")
    expect(rows.first).to_be_visible()
    before = rows.count()
    first = rows.first
    expect(first).to_contain_text("demo-choi")
    expect(first).to_contain_text("new-payee-large-transfer")
    page.screenshot(path="/tmp/console-risk-reviews.png", full_page=True)

    # The details: the feature values the decision saw, and the event.
    first.get_by_role("link", name="자세히").click()
    expect(page.get_by_role("heading", name=re.compile("판단 상세"))).to_be_visible()
    expect(page.locator("#features")).to_contain_text("payee.is_new")
    expect(page.locator("#event")).to_contain_text("demo-choi")
    page.screenshot(path="/tmp/console-risk-decision.png", full_page=True)
    page.go_back()

    first = page.locator("#queue tbody tr").first
    labelled_id = first.get_attribute("id")
    first.get_by_placeholder("메모 (선택)").fill("고객이 본인 거래가 아니라고 확인")
    first.get_by_role("button", name="사기", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("판정을 저장했습니다: 사기")
    expect(page.locator(f"#{labelled_id}")).to_have_count(0)
    expect(page.locator("#queue tbody tr")).to_have_count(before - 1)


def test_console_home_links_to_the_risk_pages(page: Page) -> None:
    page.goto("/")
    page.get_by_role("link", name=re.compile("위험 규칙")).click()
    expect(page).to_have_url(re.compile(r"/console/risk/rules"))
    page.get_by_role("link", name="검토 대기열").click()
    expect(page).to_have_url(re.compile(r"/console/risk/reviews"))
    page.get_by_role("link", name="인증서 만료").click()
    expect(page).to_have_url(re.compile(r"/console/certificates"))
