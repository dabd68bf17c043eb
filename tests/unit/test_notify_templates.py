"""Customer notice templates: every kind in Korean and English, HTML escaping, SMS/LMS sizing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jinja2
import pytest

from haetae.catalog import Locale
from haetae.notify.templates import (
    LMS_MAX_BYTES,
    NoticeTemplates,
    RenderedNotice,
    clip_bytes,
    euc_kr_length,
    fit_lms,
    format_seoul_date,
    format_seoul_datetime,
    notice_templates,
    sms_type,
)

HANGUL = re.compile("[가-힣]")
AT = datetime(2026, 11, 22, 0, 30, tzinfo=UTC)  # 09:30 in Seoul
NOT_AFTER = datetime(2027, 11, 22, 14, 59, tzinfo=UTC)  # 23:59 in Seoul

SAMPLES: dict[str, dict[str, Any]] = {
    "payment_otp": {
        "merchant": "Haetae Mart",
        "amount": 15000,
        "currency": "KRW",
        "otp": "482913",
        "minutes": 3,
    },
    "certificate_expiring": {
        "certificate_kind": "joint",
        "not_after": AT,
        "days_left": 7,
        "renew_url": "https://bank.example/certificates/renew",
    },
    "certificate_renewed": {
        "certificate_kind": "joint",
        "renewed_at": AT,
        "not_after": NOT_AFTER,
        "method": "app",
        "contact_phone": "1599-0000",
    },
    "certificate_reissued": {
        "certificate_kind": "joint",
        "reissued_at": AT,
        "device_name": "Galaxy S24",
        "report_url": "https://bank.example/report",
        "contact_phone": "1599-0000",
    },
    "fraud_report_received": {
        "case_id": "FR-2026-000123",
        "received_at": AT,
        "contact_phone": "1599-0000",
    },
}
SAMPLES["fraud_case_updated"] = {
    "case_id": "FR-20261122-7K2M9Q",
    "step": "actions_taken",
    "contact_phone": "1599-0000",
}
KINDS = sorted(SAMPLES)


@pytest.fixture(scope="module")
def templates() -> NoticeTemplates:
    return NoticeTemplates()


def render(
    templates: NoticeTemplates, kind: str, locale: Locale, **overrides: Any
) -> RenderedNotice:
    return templates.render(kind, locale, {**SAMPLES[kind], **overrides})


def test_the_packaged_kinds_are_exactly_the_sampled_ones(templates: NoticeTemplates) -> None:
    assert templates.kinds() == KINDS
    assert notice_templates() is notice_templates()


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_korean(templates: NoticeTemplates, kind: str) -> None:
    notice = render(templates, kind, "ko")
    assert notice.kind == kind
    for part in (notice.title, notice.short, notice.long, notice.html):
        assert part.strip() and HANGUL.search(part), part
    for line in (notice.title, notice.short, notice.banner or ""):
        assert "\n" not in line
    assert notice.short.startswith("[해태뱅크] ")
    assert '<html lang="ko">' in notice.html
    if notice.banner is not None:
        assert HANGUL.search(notice.banner)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_plain_ascii_english(templates: NoticeTemplates, kind: str) -> None:
    notice = render(templates, kind, "en")
    for part in (notice.title, notice.short, notice.long, notice.html, notice.banner or ""):
        assert part.isascii(), part
    for line in (notice.title, notice.short, notice.banner or ""):
        assert "\n" not in line
    assert notice.short.startswith("[Haetae Bank] ")
    assert '<html lang="en">' in notice.html


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("locale", ["ko", "en"])
def test_html_is_self_contained(templates: NoticeTemplates, kind: str, locale: Locale) -> None:
    html = render(templates, kind, locale).html
    assert html.startswith("<!DOCTYPE html>")
    assert "<link" not in html and "<img" not in html and "<script" not in html
    assert "<style" not in html  # inline styles only: e-mail clients drop <style>
    assert not re.search(r"""src=["']""", html)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("locale", ["ko", "en"])
def test_a_missing_variable_raises(templates: NoticeTemplates, kind: str, locale: Locale) -> None:
    for missing in SAMPLES[kind]:
        context = {k: v for k, v in SAMPLES[kind].items() if k != missing}
        with pytest.raises(jinja2.UndefinedError):
            templates.render(kind, locale, context)


def test_an_unknown_kind_is_a_clear_key_error(templates: NoticeTemplates) -> None:
    with pytest.raises(KeyError, match=r"no_such_notice.*known kinds"):
        templates.render("no_such_notice", "ko", {})
    with pytest.raises(KeyError):
        templates.render("_layout", "ko", {})


def test_unknown_certificate_kind_and_method_are_refused(templates: NoticeTemplates) -> None:
    with pytest.raises(ValueError, match="certificate kind"):
        render(templates, "certificate_expiring", "ko", certificate_kind="gpki")
    with pytest.raises(ValueError, match="renewal method"):
        render(templates, "certificate_renewed", "en", method="fax")


def test_a_link_must_be_http(templates: NoticeTemplates) -> None:
    with pytest.raises(ValueError, match="http"):
        render(templates, "certificate_reissued", "ko", report_url="javascript:alert(1)")


@pytest.mark.parametrize("locale", ["ko", "en"])
def test_html_escapes_customer_data_and_text_keeps_it(
    templates: NoticeTemplates, locale: Locale
) -> None:
    merchant = "<script>alert('x')</script> & Co"
    notice = render(templates, "payment_otp", locale, merchant=merchant)
    assert "<script>" not in notice.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in notice.html
    assert merchant in notice.long  # plain text: shown as typed, never interpreted
    assert "<script>" in notice.short

    device = '<b onmouseover="x">Phone</b>'
    reissued = render(templates, "certificate_reissued", locale, device_name=device)
    assert "<b onmouseover" not in reissued.html
    assert "&lt;b onmouseover=&#34;x&#34;&gt;Phone&lt;/b&gt;" in reissued.html
    assert device in reissued.long and reissued.banner is not None and device in reissued.banner


def test_payment_otp_short_text_is_only_code_merchant_amount_and_warning(
    templates: NoticeTemplates,
) -> None:
    ko = render(templates, "payment_otp", "ko", merchant="해태마트")
    assert (
        ko.short == "[해태뱅크] 결제 인증번호 482913 (해태마트 15,000원) 타인에게 알려주지 마세요."
    )
    assert sms_type(ko.short) == "sms" and euc_kr_length(ko.short) == 77
    en = render(templates, "payment_otp", "en")
    assert (
        en.short == "[Haetae Bank] Payment code 482913 (Haetae Mart, KRW 15,000). Never share it."
    )
    assert sms_type(en.short) == "sms" and euc_kr_length(en.short) == 76
    for short in (ko.short, en.short):
        assert "http" not in short and "3" not in short.replace("482913", "")
    assert ko.banner is None


@pytest.mark.parametrize("locale", ["ko", "en"])
def test_payment_otp_short_stays_one_sms_with_a_long_merchant_name(
    templates: NoticeTemplates, locale: Locale
) -> None:
    merchant = "아주아주긴이름의해태가맹점주식회사강남역점" if locale == "ko" else "Very " * 20
    notice = render(
        templates, "payment_otp", locale, merchant=merchant, amount=123456789, currency="KRW"
    )
    assert sms_type(notice.short) == "sms", euc_kr_length(notice.short)
    assert "482913" in notice.short and "…" in notice.short
    assert ("123,456,789원" if locale == "ko" else "KRW 123,456,789") in notice.short
    assert merchant in notice.long


def test_payment_otp_other_currencies(templates: NoticeTemplates) -> None:
    notice = render(templates, "payment_otp", "ko", amount=1999, currency="USD")
    assert "USD 19.99" in notice.short and "USD 19.99" in notice.long


@pytest.mark.parametrize(
    ("days_left", "ko_phrase", "en_phrase"),
    [
        (30, "30일 후", "in 30 days"),
        (7, "7일 후", "in 7 days"),
        (1, "내일", "tomorrow"),
        (0, "오늘 09:30에 만료", "today at 09:30 KST"),
    ],
)
@pytest.mark.parametrize("certificate_kind", ["joint", "financial"])
def test_certificate_expiring_wording_by_day(
    templates: NoticeTemplates,
    days_left: int,
    ko_phrase: str,
    en_phrase: str,
    certificate_kind: str,
) -> None:
    ko = render(
        templates,
        "certificate_expiring",
        "ko",
        days_left=days_left,
        certificate_kind=certificate_kind,
    )
    en = render(
        templates,
        "certificate_expiring",
        "en",
        days_left=days_left,
        certificate_kind=certificate_kind,
    )
    name_ko = "공동인증서" if certificate_kind == "joint" else "금융인증서"
    name_en = "joint certificate" if certificate_kind == "joint" else "financial certificate"
    for part in (ko.title, ko.short, ko.long, ko.banner or ""):
        assert name_ko in part
    for part in (en.title, en.short, en.long.lower(), en.banner or ""):
        assert name_en in part
    assert ko_phrase in ko.short and ko_phrase in (ko.banner or "")
    assert en_phrase in en.short and en_phrase in (en.banner or "")
    if days_left == 0:
        assert "오늘 만료" in ko.title and "today" in en.title
    # How to renew, and the window: from 1 month before expiry until expiry.
    assert "만료 1개월 전부터" in ko.long and "1 month before" in en.long
    assert "2026년 11월 22일 09:30" in ko.long and "22 Nov 2026, 09:30 KST" in en.long
    for notice in (ko, en):
        assert SAMPLES["certificate_expiring"]["renew_url"] in notice.long
        assert 'href="https://bank.example/certificates/renew"' in notice.html
        assert "http" not in notice.short  # never a link in a text message
        assert sms_type(notice.short) == "sms", (notice.short, euc_kr_length(notice.short))


@pytest.mark.parametrize(
    ("method", "ko_how", "en_how"),
    [("app", "해태뱅크 앱", "in the Haetae Bank app"), ("auto", "자동 갱신", "automatically")],
)
def test_certificate_renewed_says_what_when_until_how_and_whom_to_call(
    templates: NoticeTemplates, method: str, ko_how: str, en_how: str
) -> None:
    ko = render(templates, "certificate_renewed", "ko", method=method)
    en = render(templates, "certificate_renewed", "en", method=method)
    for text in (ko.long, ko.html):
        assert "공동인증서" in text and "2026년 11월 22일 09:30" in text
        assert "2027년 11월 22일 23:59" in text and ko_how in text and "1599-0000" in text
    for text in (en.long, en.html):
        assert "joint certificate" in text.lower() and "22 Nov 2026, 09:30 KST" in text
        assert "22 Nov 2027, 23:59 KST" in text and en_how in text and "1599-0000" in text
    assert "2027년 11월 22일" in ko.short and ko_how in ko.short and "1599-0000" in ko.short
    assert "22 Nov 2027" in en.short and en_how in en.short and "1599-0000" in en.short
    # Clear wording over squeezing: both go as an LMS.
    assert sms_type(ko.short) == "lms" and sms_type(en.short) == "lms"
    assert ko.banner is None and en.banner is None


def test_certificate_reissued_is_a_security_alert_with_a_way_to_report(
    templates: NoticeTemplates,
) -> None:
    ko = render(templates, "certificate_reissued", "ko")
    en = render(templates, "certificate_reissued", "en")
    assert ko.short == (
        "[해태뱅크] 11월 22일 09:30 새 기기(Galaxy S24)에서 공동인증서가 재발급되었습니다. "
        "본인이 아니라면 지금 바로 고객센터(1599-0000)로 신고해 주세요."
    )
    # Too long for one SMS (90 bytes) once it names the time, device and number: an LMS.
    assert euc_kr_length(ko.short) == 144 and sms_type(ko.short) == "lms"
    assert euc_kr_length(en.short) == 134 and sms_type(en.short) == "lms"
    assert "Not you? Report it now: 1599-0000" in en.short
    for notice in (ko, en):
        assert "https://bank.example/report" in notice.long
        assert 'href="https://bank.example/report"' in notice.html
        assert "1599-0000" in notice.long and "1599-0000" in notice.html
        assert notice.banner is not None and "Galaxy S24" in notice.banner
    assert ko.banner is not None and en.banner is not None
    assert "새 기기" in ko.title and "신고" in ko.banner
    assert "new device" in en.title and "Report it now" in en.banner


@pytest.mark.parametrize(
    ("locale", "when"), [("ko", "2026년 11월 22일 09:30"), ("en", "22 Nov 2026, 09:30 KST")]
)
def test_fraud_report_received_acknowledges_with_the_case_number(
    templates: NoticeTemplates, locale: Locale, when: str
) -> None:
    notice = render(templates, "fraud_report_received", locale)
    assert "FR-2026-000123" in notice.short and "FR-2026-000123" in notice.html
    assert when in notice.long and when in notice.html
    assert "1599-0000" in notice.short
    assert sms_type(notice.short) == "sms", euc_kr_length(notice.short)
    assert notice.banner is None


# --- SMS sizing ---------------------------------------------------------------------------


def test_sms_and_lms_at_the_90_byte_boundary() -> None:
    korean_90 = "가" * 45  # Hangul syllables are 2 bytes in EUC-KR
    assert euc_kr_length(korean_90) == 90 and sms_type(korean_90) == "sms"
    assert euc_kr_length(korean_90 + "a") == 91 and sms_type(korean_90 + "a") == "lms"
    assert euc_kr_length("가" * 46) == 92 and sms_type("가" * 46) == "lms"
    assert sms_type("a" * 90) == "sms" and sms_type("a" * 91) == "lms"
    mixed_90 = "[해태뱅크] " + "a" * 79
    assert euc_kr_length(mixed_90) == 90 and sms_type(mixed_90) == "sms"
    assert sms_type(mixed_90 + "가") == "lms"


def test_byte_counting_rules() -> None:
    assert euc_kr_length("") == 0
    assert euc_kr_length("똠") == 2  # outside KS X 1001, still 2 bytes (CP949) on the wire
    assert euc_kr_length("…") == 2
    assert euc_kr_length("😀") == 1  # unencodable: counted as the "?" carriers substitute
    assert euc_kr_length("1,000원") == 7


def test_fit_lms_cuts_on_a_character_boundary() -> None:
    short = "가" * 1000  # exactly 2,000 bytes: untouched
    assert fit_lms(short) == short
    long = "가" * 1500
    cut = fit_lms(long)
    assert euc_kr_length(cut) <= LMS_MAX_BYTES
    assert cut.endswith("…") and cut == "가" * 999 + "…"
    odd = "a" + "가" * 1500  # 1 + 2n bytes: the cut cannot fall inside a syllable
    cut = fit_lms(odd)
    assert euc_kr_length(cut) <= LMS_MAX_BYTES and cut == "a" + "가" * 998 + "…"
    assert fit_lms("b" * 2500) == "b" * 1998 + "…"
    assert clip_bytes("해태마트", 6) == "해태…"
    with pytest.raises(ValueError):
        clip_bytes("가나다", 1)


# --- dates --------------------------------------------------------------------------------


def test_seoul_datetime_of_a_utc_time_that_is_the_next_day_in_seoul() -> None:
    late_utc = datetime(2026, 11, 21, 15, 5, tzinfo=UTC)  # 00:05 on 22 Nov in Seoul
    assert format_seoul_datetime(late_utc, "ko") == "2026년 11월 22일 00:05"
    assert format_seoul_datetime(late_utc, "en") == "22 Nov 2026, 00:05 KST"
    assert format_seoul_date(late_utc, "ko") == "2026년 11월 22일"
    assert format_seoul_date(late_utc, "en") == "22 Nov 2026"
    assert format_seoul_date(late_utc, "ko", with_year=False) == "11월 22일"
    new_york = datetime(2026, 1, 4, 19, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert format_seoul_datetime(new_york, "en") == "5 Jan 2026, 09:30 KST"


def test_the_same_filters_in_templates(templates: NoticeTemplates) -> None:
    env = templates.environment
    source = "{{ t | seoul_datetime }} / {{ t | seoul_date }} / {{ 15000 | krw }}"
    late_utc = datetime(2026, 11, 21, 15, 5, tzinfo=UTC)
    assert (
        env.from_string(source).render(t=late_utc, locale="ko")
        == "2026년 11월 22일 00:05 / 2026년 11월 22일 / 15,000원"
    )
    assert (
        env.from_string(source).render(t=late_utc, locale="en")
        == "22 Nov 2026, 00:05 KST / 22 Nov 2026 / KRW 15,000"
    )


def test_a_naive_datetime_is_refused(templates: NoticeTemplates) -> None:
    with pytest.raises(ValueError, match="naive"):
        render(templates, "fraud_report_received", "ko", received_at=datetime(2026, 11, 22))


@pytest.mark.parametrize("locale", ["ko", "en"])
def test_fraud_case_updated_says_what_happened_and_what_next(
    templates: NoticeTemplates, locale: Locale
) -> None:
    deadline = datetime(2026, 11, 25, 14, 59, tzinfo=UTC)  # 23:59 on the 25th in Seoul
    taken = render(templates, "fraud_case_updated", locale, deadline=deadline)
    assert ("2026년 11월 25일" if locale == "ko" else "25 Nov 2026") in taken.long
    assert "FR-20261122-7K2M9Q" in taken.short and "1599-0000" in taken.short
    refund = render(
        templates, "fraud_case_updated", locale, step="refund_decided", refund_amount=1_250_000
    )
    assert "1,250,000" in refund.long and "1,250,000" in refund.html
    rejected = render(templates, "fraud_case_updated", locale, step="rejected", reason="duplicate")
    assert "duplicate" in rejected.long
    assert taken.long != refund.long != rejected.long
