"""The customer app's "report fraud" screen, as a demo page: a demo customer reports a scam
or a lost card, and sees at once the case number and the protective actions taken (the same
``services.cases.report`` the app's API calls).

Demo mode only, from the machine itself (loopback), and for demo customers only (ids
starting ``demo-``): it takes no key, and a report suspends accounts and blocks transfers.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from haetae.cases import process
from haetae.cases.models import Case, ProtectiveAction
from haetae.catalog import Locale
from haetae.console.access import SameOrigin, from_loopback, require_demo
from haetae.console.case_labels import CASE_LABELS, REPORT_FORM_LABELS
from haetae.console.case_report_form import Problem, ReportForm, parse_report
from haetae.console.pages import Labels, merge_labels, page_locale, render
from haetae.demo import DEMO_CUSTOMER_PREFIX, DEMO_EXPIRING_CUSTOMER
from haetae.deps import ServicesDep
from haetae.errors import HaetaeError
from haetae.logging import scrub_pans
from haetae.notify.templates import format_seoul_date, format_seoul_datetime
from haetae.services import Services

PAGE = "/demo/report"
# Who filed the report, in the case's trail.
DEMO_APP = "customer app (demo)"
# How many "where did the money go" rows the form has.
ACCOUNT_ROWS = 3
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")

# The banks a customer picks from (this bank first, as settings.institution_code).
BANKS: dict[str, dict[Locale, str]] = {
    "004": {"ko": "KB국민은행", "en": "KB Kookmin Bank"},
    "088": {"ko": "신한은행", "en": "Shinhan Bank"},
    "020": {"ko": "우리은행", "en": "Woori Bank"},
    "081": {"ko": "하나은행", "en": "Hana Bank"},
    "011": {"ko": "NH농협은행", "en": "NH NongHyup Bank"},
    "003": {"ko": "IBK기업은행", "en": "IBK Industrial Bank"},
    "089": {"ko": "케이뱅크", "en": "K bank"},
    "092": {"ko": "토스뱅크", "en": "Toss Bank"},
    "071": {"ko": "우체국", "en": "Korea Post"},
}
HOME_BANK: dict[Locale, str] = {"ko": "해태뱅크", "en": "Haetae Bank"}


async def require_loopback(request: Request) -> None:
    """The demo report page answers only a browser on the platform's own machine."""
    if not from_loopback(request):
        raise HaetaeError("not_found")


router = APIRouter(
    include_in_schema=False, dependencies=[Depends(require_demo), Depends(require_loopback)]
)

_OWN_LABELS: Labels = {
    "ko": {
        "console_title": "해태 콘솔",
        "page_title": "해태뱅크 앱",
        "lang_label": "언어",
        "home": "콘솔",
        "demo_note": "고객 앱 화면을 흉내 낸 데모입니다. 고객:",
        "report_title": "사기 피해 신고",
        "report_intro": "돈을 보냈는데 사기가 의심되거나 카드를 잃어버렸다면 바로 신고해 "
        "주세요. 24시간 접수하며, 신고하는 즉시 상대 계좌 지급정지 등 피해를 막는 조치를 합니다.",
        "q_kind": "어떤 피해를 입으셨나요?",
        "ck_voice_phishing": "전화로 속아 돈을 보냈어요 (보이스피싱)",
        "ck_smishing": "문자 속 링크를 눌렀다가 피해를 입었어요 (스미싱)",
        "ck_messenger_impersonation": "가족·지인을 사칭한 메신저에 속아 돈을 보냈어요",
        "ck_account_takeover": "누군가 내 계정으로 몰래 돈을 보냈어요",
        "ck_card_fraud": "내가 하지 않은 카드 결제가 있어요",
        "ck_lost_card": "카드를 잃어버렸거나 도난당했어요",
        "ck_other": "기타",
        "q_accounts": "돈을 보낸 상대 계좌",
        "accounts_hint": "알고 있는 계좌를 모두 적어 주세요. 모르면 비워 두셔도 됩니다.",
        "bank": "은행",
        "choose_bank": "은행 선택",
        "account": "계좌번호",
        "sent": "보낸 금액 (원)",
        "row": "{n}번째 계좌",
        "q_amount": "피해 금액 (원)",
        "q_when": "언제 있었던 일인가요?",
        "q_my_account": "돈이 빠져나간 내 계좌 (선택)",
        "q_card": "잃어버렸거나 부정 사용된 카드",
        "no_card": "해당 없음",
        "card_option": "해태 체크카드",
        "q_phone": "연락받을 휴대폰 번호 (선택)",
        "q_description": "어떤 일이 있었는지 적어 주세요",
        "description_hint": "상대가 한 말, 받은 문자, 보낸 시각 등을 적어 주시면 도움이 됩니다. "
        "카드번호와 비밀번호는 적지 마세요.",
        "submit": "신고하기",
        "submit_note": "신고하면 접수번호가 바로 나오고, 처리 상황은 알림함과 문자로 알려 "
        "드립니다.",
        "received_title": "신고가 접수되었습니다",
        "case_number": "접수번호",
        "received_at": "접수 시각",
        "case_number_hint": "상담할 때 이 번호를 알려 주세요.",
        "actions_title": "피해를 막기 위해 한 조치",
        "actions_empty": "자동으로 한 조치는 아직 없습니다. 담당자가 곧 확인해 연락드립니다.",
        "cust_payment_suspension": "상대 계좌 {target}에서 돈이 빠져나가지 못하게 했습니다.",
        "cust_suspension_request": "{target} 계좌의 지급정지를 그 은행에 요청했습니다.",
        "cust_mule_list_entry": "{target} 계좌로 가는 이체를 막았습니다.",
        "cust_device_list_entry": "신고된 기기에서의 거래를 막았습니다.",
        "cust_phone_list_entry": "신고된 전화번호를 등록했습니다.",
        "cust_transfer_hold": "추가 피해를 막기 위해 고객님 계좌의 이체를 잠시 보류합니다.",
        "cust_card_block": "카드 사용을 정지했습니다.",
        "cust_certificate_revocation": "최근 재발급된 인증서를 폐기했습니다.",
        "next_title": "이제 이렇게 해 주세요",
        "next_application": "돈을 돌려받으시려면 {deadline}까지 피해구제 신청서를 제출해 "
        "주세요. 기한 안에 내지 않으면 지급정지가 풀릴 수 있습니다.",
        "next_review": "담당자가 확인한 뒤 처리 결과를 알려 드립니다.",
        "contact": "문의: 고객센터 {phone} (24시간)",
        "inbox_link": "알림함에서 안내 보기",
        "another": "다른 피해 신고하기",
        "error_suspect_accounts": "{line}번째 계좌: 은행을 고르고 계좌번호를 숫자와 -로 적어 "
        "주세요. 보낸 금액은 숫자로 적어 주세요.",
        "error_summary": "입력한 내용을 확인해 주세요.",
    },
    "en": {
        "console_title": "Haetae console",
        "page_title": "Haetae Bank app",
        "lang_label": "Language",
        "home": "Console",
        "demo_note": "A demo of the customer's app. Customer:",
        "report_title": "Report fraud",
        "report_intro": "If you sent money and think it was a scam, or lost your card, report "
        "it now. We take reports 24 hours a day and act at once, for example by stopping money "
        "leaving the account you sent it to.",
        "q_kind": "What happened?",
        "ck_voice_phishing": "I was tricked on the phone into sending money (voice phishing)",
        "ck_smishing": "I tapped a link in a text message (smishing)",
        "ck_messenger_impersonation": "Someone posing as family or a friend on a messenger",
        "ck_account_takeover": "Someone sent money from my account without me",
        "ck_card_fraud": "There is a card payment I did not make",
        "ck_lost_card": "I lost my card or it was stolen",
        "ck_other": "Something else",
        "q_accounts": "Where did the money go?",
        "accounts_hint": "Every account you know of. Leave it empty if you do not know.",
        "bank": "Bank",
        "choose_bank": "Choose a bank",
        "account": "Account number",
        "sent": "Amount sent (KRW)",
        "row": "Account {n}",
        "q_amount": "How much did you lose? (KRW)",
        "q_when": "When did it happen?",
        "q_my_account": "Your account the money left (optional)",
        "q_card": "The card lost or misused",
        "no_card": "None",
        "card_option": "Haetae debit card",
        "q_phone": "Mobile number to reach you (optional)",
        "q_description": "Tell us what happened",
        "description_hint": "What they said, the text you got, when you sent the money. Never "
        "write your card number or password.",
        "submit": "Report",
        "submit_note": "You get a case number at once; we tell you how it goes in your inbox "
        "and by text message.",
        "received_title": "Your report has been received",
        "case_number": "Case number",
        "received_at": "Received",
        "case_number_hint": "Give this number when you talk to us.",
        "actions_title": "What we have done to protect you",
        "actions_empty": "Nothing automatic yet. Someone will look at it soon and call you.",
        "cust_payment_suspension": "Money can no longer leave the account {target}.",
        "cust_suspension_request": "We asked the bank of {target} to suspend payments from it.",
        "cust_mule_list_entry": "Transfers to {target} are blocked.",
        "cust_device_list_entry": "The device you reported is blocked.",
        "cust_phone_list_entry": "The phone number you reported is listed.",
        "cust_transfer_hold": "Transfers from your account are held for now, to stop any more "
        "loss.",
        "cust_card_block": "Your card is blocked.",
        "cust_certificate_revocation": "A recently reissued certificate was revoked.",
        "next_title": "What to do now",
        "next_application": "To get your money back, send the damage-relief application by "
        "{deadline}. If it does not arrive in time, the suspension may be lifted.",
        "next_review": "We will look into it and tell you the outcome.",
        "contact": "Questions: call {phone} (24 hours)",
        "inbox_link": "See the notice in your inbox",
        "another": "Report something else",
        "error_suspect_accounts": "Account {line}: choose the bank and write the account "
        "number with digits and -. Write the amount as a number.",
        "error_summary": "Please check what you entered.",
    },
}
LABELS = merge_labels(CASE_LABELS, REPORT_FORM_LABELS, _OWN_LABELS)


def _banks(home: str, locale: Locale) -> list[tuple[str, str]]:
    return [(home, HOME_BANK[locale])] + [
        (code, names[locale]) for code, names in BANKS.items() if code != home
    ]


def _account_text(target: str, home: str, locale: Locale) -> str:
    """``090:3333-05-7654321`` as a customer reads it: ``해태뱅크 3333-05-7654321``."""
    code, _, number = target.partition(":")
    if not number:
        return target
    name = HOME_BANK[locale] if code == home else BANKS.get(code, {}).get(locale, code)
    return f"{name} {number}"


def _action_lines(
    actions: list[ProtectiveAction], home: str, t: Mapping[str, str], locale: Locale
) -> list[dict[str, str]]:
    return [
        {
            "type": a.type,
            "title": t.get(f"action_{a.type}", a.type),
            "text": t.get(f"cust_{a.type}", "").format(
                target=_account_text(a.target, home, locale)
            ),
        }
        for a in actions
        if a.status in ("active", "requested")
    ]


def _customer(customer: str | None) -> str:
    chosen = customer or DEMO_EXPIRING_CUSTOMER
    if not chosen.startswith(DEMO_CUSTOMER_PREFIX) or len(chosen) > 100:
        raise HaetaeError("not_found")
    return chosen


def _form_page(
    request: Request,
    services: Services,
    locale: Locale,
    customer: str,
    *,
    posted: dict[str, Any] | None = None,
    problems: dict[str, Problem] | None = None,
    failure: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    t = LABELS[locale]
    values = posted or {}
    rows = values.get("rows") or [("", "", "")] * ACCOUNT_ROWS
    return render(
        request,
        "demo_fraud_report.html",
        locale,
        LABELS,
        status_code=status_code,
        customer=customer,
        kinds=process.KINDS,
        banks=_banks(services.settings.institution_code, locale),
        rows=rows,
        values=values,
        card_id=f"{customer}-card",
        errors={name: t[p.label].format(**p.params) for name, p in (problems or {}).items()},
        failure=failure,
        token=secrets.token_urlsafe(18),
        case=None,
    )


@router.get(PAGE, response_class=HTMLResponse)
async def demo_report_page(
    request: Request,
    services: ServicesDep,
    customer: Annotated[str | None, Query(max_length=100)] = None,
    lang: Annotated[str | None, Query()] = None,
) -> Response:
    return _form_page(request, services, page_locale(request, lang), _customer(customer))


Rows = Annotated[list[str], Form()]
Text = Annotated[str, Form(max_length=1000)]


@router.post(PAGE, response_class=HTMLResponse, dependencies=[SameOrigin])
async def demo_file_report(
    request: Request,
    services: ServicesDep,
    customer: Text = "",
    kind: Text = "",
    bank_code: Rows | None = None,
    account_number: Rows | None = None,
    account_amount: Rows | None = None,
    amount: Text = "",
    occurred_at: Text = "",
    victim_account: Text = "",
    card_id: Text = "",
    phone: Text = "",
    description: Annotated[str, Form(max_length=20_000)] = "",
    token: Text = "",
    lang: Annotated[str | None, Form()] = None,
) -> Response:
    locale = page_locale(request, lang)
    who = _customer(customer)
    banks, numbers, sent = bank_code or [], account_number or [], account_amount or []
    rows = [
        (
            banks[i].strip() if i < len(banks) else "",
            numbers[i].strip() if i < len(numbers) else "",
            sent[i].strip() if i < len(sent) else "",
        )
        for i in range(min(max(len(banks), len(numbers), len(sent), ACCOUNT_ROWS), 50))
    ]
    form = ReportForm.posted(
        kind=kind,
        reporter_customer_id=who,
        reporter_phone=phone,
        victim_customer_id=who,
        victim_account=victim_account,
        victim_card_id=card_id if card_id == f"{who}-card" else "",
        # A row with only a bank chosen is not an account: the customer left it empty.
        suspect_accounts="\n".join(" ".join(row) if row[1] or row[2] else "" for row in rows),
        amount=amount,
        occurred_at=occurred_at,
        description=description,
    )
    posted = {
        "kind": kind,
        "rows": rows,
        "amount": amount,
        "occurred_at": occurred_at,
        "victim_account": victim_account,
        "card_id": card_id,
        "phone": phone,
        "description": scrub_pans(description),
    }
    report, problems = parse_report(form, services.clock())
    if report is None:
        return _form_page(
            request, services, locale, who, posted=posted, problems=problems, status_code=422
        )
    key = f"demo-report:{token}" if _TOKEN.fullmatch(token) else None
    try:
        view, _ = await services.cases.report(
            report, reported_by=DEMO_APP, idempotency_key=key, locale=locale
        )
    except HaetaeError as error:
        rendered = services.catalog.render_error(error.code, locale, params=error.params)
        status = error.status_code or services.catalog.entry(error.code).status
        return _form_page(
            request, services, locale, who, posted=posted,
            failure=f"{rendered.message} {rendered.next_step}", status_code=status,
        )  # fmt: skip
    query = urlencode({"lang": locale})
    return RedirectResponse(f"{PAGE}/{quote(view.case.id, safe='')}?{query}", status_code=303)


def _deadline(case: Case, locale: Locale) -> str | None:
    """The written application's deadline, as the day it falls on: a deadline "on day D"
    runs out at 00:00 Seoul time on the next day (process.end_of_seoul_day)."""
    due = case.state_due_at
    if due is None or case.state != "protective_actions_taken":
        return None
    if not process.application_needed(case.kind):
        return None
    return format_seoul_date(due - timedelta(seconds=1), locale)


@router.get(f"{PAGE}/{{case_id}}", response_class=HTMLResponse)
async def demo_report_received(
    request: Request,
    services: ServicesDep,
    case_id: str,
    lang: Annotated[str | None, Query()] = None,
) -> Response:
    locale = page_locale(request, lang)
    view = await services.cases.get(case_id)
    case = view.case
    customer = case.reporter_customer_id or ""
    if not customer.startswith(DEMO_CUSTOMER_PREFIX):
        raise HaetaeError("case_not_found", params={"case_id": case_id})
    t = LABELS[locale]
    return render(
        request,
        "demo_fraud_report.html",
        locale,
        LABELS,
        customer=customer,
        case=case,
        received=format_seoul_datetime(case.received_at, locale),
        actions=_action_lines(view.actions, services.settings.institution_code, t, locale),
        deadline=_deadline(case, locale),
        contact_phone=services.settings.contact_phone,
    )
