"""A fraud report from the customer's demo app to the analyst's case page, in a real browser
against `haetae serve --demo`: the customer sees the case number and the payment suspension
at once; the analyst finds the case in the queue, lifts an action with a reason, and the
reason is in the case's audit trail."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

SUSPECT_ACCOUNT = "3333-05-2468013"
# A demo customer of this test's own: demo-kim's inbox belongs to the certificate tests.
CUSTOMER = "demo-e2e-reporter"


def test_a_customer_reports_fraud_and_an_analyst_lifts_an_action(page: Page) -> None:
    # The customer, on the phone-sized demo app.
    page.goto(f"/demo/report?customer={CUSTOMER}")
    expect(page.get_by_role("heading", name="사기 피해 신고")).to_be_visible()
    expect(page.locator(".intro code")).to_have_text(CUSTOMER)
    page.get_by_label("전화로 속아 돈을 보냈어요 (보이스피싱)").check()
    first = page.get_by_role("group", name="1번째 계좌")
    first.get_by_label("은행").select_option(label="해태뱅크")
    first.get_by_label("계좌번호").fill(SUSPECT_ACCOUNT)
    first.get_by_label("보낸 금액 (원)").fill("2,000,000")
    page.get_by_label("피해 금액 (원)").fill("2,000,000")
    page.get_by_label("어떤 일이 있었는지 적어 주세요").fill(
        "검찰청 수사관이라는 전화를 받고 안전계좌로 옮기라고 해서 이체했어요."
    )
    page.screenshot(path="/tmp/demo-fraud-report-form.png", full_page=True)
    page.get_by_role("button", name="신고하기").click()

    expect(page.get_by_role("heading", name="신고가 접수되었습니다")).to_be_visible()
    case_number = page.locator("#case-number")
    expect(case_number).to_have_text(re.compile(r"^FR-\d{8}-[0-9A-Z]{6}$"))
    case_id = case_number.inner_text()
    taken = page.locator("#actions-taken")
    expect(taken).to_contain_text("지급정지")
    expect(taken).to_contain_text(f"해태뱅크 {SUSPECT_ACCOUNT}")
    expect(page.get_by_text("피해구제 신청서를 제출해 주세요", exact=False)).to_be_visible()
    page.screenshot(path="/tmp/demo-fraud-report-received.png", full_page=True)

    # The analyst, on a desk-sized screen: the queue, then the case.
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto("/console/cases")
    expect(page.get_by_role("heading", name="사기 사건 대기열")).to_be_visible()
    row = page.locator(f"#case-{case_id}")
    expect(row).to_contain_text("보이스피싱")
    expect(row).to_contain_text("보호 조치 완료")
    expect(row).to_contain_text("남음")
    page.screenshot(path="/tmp/console-cases.png", full_page=True)
    row.get_by_role("link", name=case_id).click()

    expect(page.get_by_role("heading", name=re.compile(case_id))).to_be_visible()
    expect(page.locator("#case-due")).to_contain_text("피해구제 신청서 제출 기한")
    suspension = page.locator('#actions tr[data-type="payment_suspension"]')
    expect(suspension).to_contain_text(f"090:{SUSPECT_ACCOUNT}")
    expect(suspension).to_contain_text("적용 중")

    # Lifting needs a reason: the browser asks for one before anything is sent.
    lift = suspension.get_by_role("button", name="해제")
    lift.click()
    expect(suspension).to_contain_text("적용 중")
    reason = "예금주가 정상 거래임을 증빙해 해제"
    suspension.get_by_placeholder("해제 사유").fill(reason)
    lift.click()

    expect(page.get_by_role("status")).to_contain_text("보호 조치를 해제했습니다.")
    suspension = page.locator('#actions tr[data-type="payment_suspension"]')
    expect(suspension).to_contain_text("해제됨")
    expect(suspension).to_contain_text(reason)
    expect(page.locator("#trail")).to_contain_text(f"지급정지 해제 · 사유: {reason}")
    expect(page.locator("#chain-broken")).to_have_count(0)
    page.screenshot(path="/tmp/console-case.png", full_page=True)


def test_the_report_form_and_the_case_page_in_english(page: Page) -> None:
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto("/console/fraud-reports/new?lang=en")
    expect(page.get_by_role("heading", name="Take a fraud report")).to_be_visible()
    page.get_by_label("Kind of report").select_option("lost_card")
    page.get_by_role("button", name="File and take protective actions").click()
    # Nobody to answer: the page says so and sends nothing.
    expect(page.get_by_role("alert").first).to_contain_text("Please check what you entered.")
    expect(page.get_by_text("Give the reporter's customer id or a phone number")).to_be_visible()

    page.get_by_label("Phone", exact=True).fill("010-2222-3333")
    page.get_by_label("Card id (not the card number)").fill("demo-park-card")
    page.get_by_role("button", name="File and take protective actions").click()
    expect(page.get_by_role("status")).to_contain_text("Report received")
    expect(page.locator('#actions tr[data-type="card_block"]')).to_contain_text("Card blocked")
    page.screenshot(path="/tmp/console-case-en.png", full_page=True)
