"""The customer checkout page in a real browser against a real `haetae serve --demo`."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.e2e

SCREENSHOT = "/tmp/checkout.png"
PAY_KO = "15,000원 결제하기"


def _screenshot(page: Page, case: str) -> None:
    """The latest case at SCREENSHOT, and every case under its own name, to look at."""
    path = f"/tmp/checkout-{case}.png"
    page.screenshot(path=path, full_page=True)
    shutil.copyfile(path, SCREENSHOT)


def _type_card(page: Page, number: str, expiry: str = "1230", cvc: str = "123") -> None:
    page.get_by_label("카드 번호", exact=True).press_sequentially(number)
    page.get_by_label("유효기간", exact=True).press_sequentially(expiry)
    if cvc:
        page.get_by_label("CVC", exact=True).press_sequentially(cvc)


def test_wrong_number_then_good_card(page: Page) -> None:
    page.goto("/checkout")
    number = page.get_by_label("카드 번호", exact=True)
    number.press_sequentially("4242424242424241")
    expect(number).to_have_value("4242 4242 4242 4241")
    expect(page.locator("#card-brand")).to_have_text("Visa")
    page.get_by_label("유효기간", exact=True).press_sequentially("1230")
    expect(page.get_by_label("유효기간", exact=True)).to_have_value("12/30")
    page.get_by_label("CVC", exact=True).press_sequentially("123")
    page.get_by_role("button", name=PAY_KO).click()

    # The catalog's message, under the card-number field and in the result panel.
    expect(page.locator("#card-number-error")).to_have_text("카드 번호가 올바르지 않습니다.")
    expect(number).to_have_attribute("aria-invalid", "true")
    result = page.locator("#result")
    expect(result).to_contain_text("카드 번호가 올바르지 않습니다.")
    expect(result).to_contain_text("카드 앞면의 번호를 다시 확인하고 정확히 입력해 주세요.")
    _screenshot(page, "wrong-number")

    number.press("Control+a")
    number.press("Backspace")
    expect(number).to_have_value("")
    expect(page.locator("#card-number-error")).to_be_empty()
    number.press_sequentially("4242424242424242")
    expect(number).to_have_value("4242 4242 4242 4242")
    page.get_by_role("button", name=PAY_KO).click()

    expect(result).to_contain_text("결제가 완료되었습니다")
    expect(result).to_contain_text("15,000원")
    expect(result).to_contain_text("424242******4242")
    expect(result.locator(".result-row").nth(2).locator("dd")).to_have_text(re.compile(r"\w{6}"))
    _screenshot(page, "approved")


def test_number_formatting_brands_and_domestic_fields(page: Page) -> None:
    page.goto("/checkout")
    number = page.get_by_label("카드 번호", exact=True)

    # Pasted with dashes: Amex is grouped 4-6-5 and stops at 15 digits; its CVC is 4 digits.
    number.focus()
    page.keyboard.insert_text("3782-822463-10005")
    expect(number).to_have_value("3782 822463 10005")
    number.press_sequentially("9")
    expect(number).to_have_value("3782 822463 10005")
    expect(page.locator("#card-brand")).to_have_text("Amex")
    cvc = page.get_by_label("CVC", exact=True)
    cvc.press_sequentially("12345")
    expect(cvc).to_have_value("1234")

    # Letters are dropped as typed; backspace over a group's end removes a digit.
    number.press("Control+a")
    number.press("Backspace")
    number.press_sequentially("5a5b5-5 4")
    expect(number).to_have_value("5555 4")
    expect(page.locator("#card-brand")).to_have_text("Mastercard")
    number.press("Backspace")
    expect(number).to_have_value("5555")

    expiry = page.get_by_label("유효기간", exact=True)
    expiry.press_sequentially("4")
    expect(expiry).to_have_value("04/")
    expiry.press_sequentially("2x9")
    expect(expiry).to_have_value("04/29")

    # A Korean domestic card asks for birth date and password digits instead of the CVC.
    number.press("Control+a")
    number.press("Backspace")
    number.press_sequentially("9410123456789010")
    expect(page.locator("#card-brand")).to_have_text("국내카드")
    expect(page.locator("#cvc-field")).to_be_hidden()
    page.get_by_label("생년월일 6자리 또는 사업자번호 10자리").press_sequentially("900101")
    page.get_by_label("카드 비밀번호 앞 2자리").press_sequentially("12")
    page.get_by_role("button", name=PAY_KO).click()
    result = page.locator("#result")
    expect(result).to_contain_text("결제가 완료되었습니다")
    expect(result).to_contain_text("941012******9010")
    _screenshot(page, "domestic")


def test_step_up_with_the_code_from_the_demo_inbox(page: Page) -> None:
    page.goto("/checkout")
    _type_card(page, "4000000000003220")
    page.get_by_role("button", name=PAY_KO).click()

    challenge = page.locator("#challenge")
    expect(challenge).to_be_visible()
    code_in_inbox = page.locator("#inbox-items .inbox-code").first
    expect(code_in_inbox).to_have_text(re.compile(r"^\d{6}$"))
    code = code_in_inbox.inner_text()

    otp = page.get_by_label("인증번호", exact=True)
    otp.press_sequentially("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="인증하고 결제하기").click()
    expect(page.locator("#otp-error")).to_contain_text("인증번호가 일치하지 않습니다.")
    _screenshot(page, "challenge")

    otp.fill("")
    otp.press_sequentially(code)
    page.get_by_role("button", name="인증하고 결제하기").click()
    expect(challenge).to_be_hidden()
    expect(page.locator("#result")).to_contain_text("결제가 완료되었습니다")
    _screenshot(page, "challenge-approved")


def test_english_toggle_shows_english_labels_and_catalog_text(page: Page) -> None:
    page.goto("/checkout")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(r"[?&]lang=en"))
    number = page.get_by_label("Card number", exact=True)
    number.press_sequentially("4242424242424241")
    page.get_by_label("Expiry date", exact=True).press_sequentially("1230")
    page.get_by_label("Security code", exact=True).press_sequentially("123")
    page.get_by_role("button", name="Pay KRW 15,000").click()
    expect(page.locator("#card-number-error")).to_have_text("The card number is not valid.")
    _screenshot(page, "english")


def test_retry_after_a_lost_reply_reuses_the_idempotency_key(page: Page) -> None:
    keys: list[str] = []
    lost = {"done": False}

    def lose_first_reply(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if lost["done"]:
            route.continue_()
            return
        lost["done"] = True
        route.fetch()  # the server takes the payment ...
        route.abort("connectionreset")  # ... and the reply never reaches the browser

    page.route("**/console/checkout/payments", lose_first_reply)
    page.goto("/checkout")
    _type_card(page, "4242424242424242")
    pay = page.get_by_role("button", name=PAY_KO)
    pay.click()
    result = page.locator("#result")
    expect(result).to_contain_text("서버에 연결하지 못했습니다")
    pay.click()
    expect(result).to_contain_text("결제가 완료되었습니다")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]


def test_console_home_links_to_the_checkout(page: Page) -> None:
    page.goto("/")
    for name in ("API 문서", "상태 확인", "지표"):
        expect(page.get_by_role("link", name=re.compile(name))).to_be_visible()
    page.screenshot(path="/tmp/console-home.png", full_page=True)
    page.get_by_role("link", name=re.compile("결제 데모")).click()
    expect(page).to_have_url(re.compile(r"/checkout"))
    expect(page.get_by_label("카드 번호", exact=True)).to_be_visible()
