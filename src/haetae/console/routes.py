"""The web console: a landing page and the demo merchant's customer checkout page; the
certificate page (certificate_pages), the risk rules and review pages (risk_rule_pages,
risk_review_pages), their login (access) and the demo app inbox (demo_inbox) have modules of
their own and are mounted here.

The checkout page is the demo merchant's own page, so its routes take payments as that
merchant without an API key. They are a demo: a deployment that is not one should not
expose them (the demo inbox shows one-time codes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel

from haetae.catalog import Locale, format_money
from haetae.console.access import require_demo
from haetae.console.access import router as access_router
from haetae.console.case_pages import router as case_pages_router
from haetae.console.certificate_pages import router as certificate_pages_router
from haetae.console.demo_fraud_report import router as demo_fraud_report_router
from haetae.console.demo_inbox import router as demo_inbox_router
from haetae.console.fraud_report_pages import router as fraud_report_pages_router
from haetae.console.pages import HERE, page_locale, render
from haetae.console.risk_review_pages import router as risk_review_pages_router
from haetae.console.risk_rule_pages import router as risk_rule_pages_router
from haetae.demo import DEMO_CUSTOMER_PREFIX, DEMO_MERCHANT
from haetae.deps import LocaleDep, ServicesDep
from haetae.errors import HaetaeError
from haetae.merchants.models import Merchant
from haetae.merchants.service import get_or_create_merchant
from haetae.notify.service import list_inbox
from haetae.payments.schemas import ChallengeIn, PaymentCreate
from haetae.services import Services

router = APIRouter(include_in_schema=False)

# Only these files are served, by name: nothing else under the package is reachable.
_STATIC: dict[str, str] = {
    "console.css": "text/css; charset=utf-8",
    "checkout.js": "text/javascript; charset=utf-8",
    "demo-inbox.js": "text/javascript; charset=utf-8",
    "risk-rules.js": "text/javascript; charset=utf-8",
}

# The demo inbox answers only for demo customers (DEMO_CUSTOMER_PREFIX), never for a real
# customer's codes.
DEMO_INBOX_LIMIT = 5

# The order the demo checkout page sells.
DEMO_ORDER: dict[str, Any] = {"amount": 15000, "currency": "KRW"}

# The pages' own labels. Failure text never lives here: it comes from the catalog.
LABELS: dict[Locale, dict[str, str]] = {
    "ko": {
        "console_title": "해태 콘솔",
        "console_intro": "디지털 은행과 결제사를 위한 고객 보호 플랫폼의 데모 콘솔입니다.",
        "link_checkout": "결제 데모",
        "link_checkout_desc": "데모 가맹점의 카드 결제 화면 (테스트 카드 사용)",
        "link_certificates": "인증서 만료 현황",
        "link_certificates_desc": "주별 만료 예정 인증서와 최근 보낸 안내 (분석가용, 로그인 필요)",
        "link_risk_rules": "위험 규칙",
        "link_risk_rules_desc": "사기 탐지 규칙 보기·추가·끄기와 백테스트 (분석가용, 로그인 필요)",
        "link_risk_reviews": "검토 대기열",
        "link_risk_reviews_desc": "검토 판단을 받은 거래를 사기 또는 정상으로 판정 "
        "(분석가용, 로그인 필요)",
        "link_demo_inbox": "고객 앱 알림함 데모",
        "link_demo_inbox_desc": "데모 고객(demo-kim)의 배너, 로그인 팝업, 알림함",
        "link_docs": "API 문서",
        "link_docs_desc": "OpenAPI (Swagger UI)",
        "link_healthz": "상태 확인",
        "link_healthz_desc": "/healthz: 서비스와 데이터베이스 상태",
        "link_metrics": "지표",
        "link_metrics_desc": "/metrics: Prometheus 지표",
        "page_title": "주문 결제",
        "shop_name": "해태 데모샵",
        "order_title": "주문 내역",
        "item_name": "해태 텀블러 (500ml)",
        "item_qty": "1개",
        "total": "총 결제금액",
        "card_title": "카드 정보 입력",
        "card_number": "카드 번호",
        "expiry": "유효기간",
        "expiry_hint": "MM/YY",
        "cvc": "CVC",
        "cvc_hint": "카드 뒷면 3자리",
        "cvc_hint_amex": "카드 앞면 4자리",
        "birth": "생년월일 6자리 또는 사업자번호 10자리",
        "birth_hint": "예: 900101",
        "password2": "카드 비밀번호 앞 2자리",
        "domestic_note": "국내카드 본인확인: 생년월일(법인은 사업자번호)과 "
        "비밀번호 앞 2자리를 입력해 주세요.",
        "pay": "{amount} 결제하기",
        "paying": "결제 요청 중…",
        "approved_title": "결제가 완료되었습니다",
        "approved_amount": "결제금액",
        "approved_card": "카드",
        "approved_code": "승인번호",
        "new_order": "새 주문으로 다시 해보기",
        "challenge_title": "본인 인증",
        "challenge_text": "알림함으로 보낸 인증번호 6자리를 입력해 주세요.",
        "otp": "인증번호",
        "otp_submit": "인증하고 결제하기",
        "inbox_title": "데모 알림함",
        "inbox_note": "실제 서비스에서는 고객의 앱이나 문자로 전달되는 알림입니다.",
        "inbox_empty": "아직 받은 알림이 없습니다.",
        "inbox_refresh": "새로고침",
        "network": "서버에 연결하지 못했습니다. 인터넷 연결을 확인한 뒤 다시 결제해 주세요.",
        "test_cards": "테스트 카드",
        "secure_note": "카드 정보는 암호화된 연결로 전송되며 가맹점에 저장되지 않습니다.",
        "brand_domestic": "국내카드",
        "lang_label": "언어",
        "home": "콘솔",
    },
    "en": {
        "console_title": "Haetae console",
        "console_intro": "The demo console of a customer-protection platform for digital banks "
        "and payment companies.",
        "link_checkout": "Checkout demo",
        "link_checkout_desc": "The demo merchant's card checkout (test cards)",
        "link_certificates": "Certificate expiry",
        "link_certificates_desc": "Certificates expiring per week and the notices sent "
        "(analysts; sign-in needed)",
        "link_risk_rules": "Risk rules",
        "link_risk_rules_desc": "View, add and switch off fraud rules, and backtest them "
        "(analysts; sign-in needed)",
        "link_risk_reviews": "Review queue",
        "link_risk_reviews_desc": "Label the events decided 'review' as fraud or genuine "
        "(analysts; sign-in needed)",
        "link_demo_inbox": "Customer app inbox demo",
        "link_demo_inbox_desc": "A demo customer's (demo-kim) banners, login pop-up and inbox",
        "link_docs": "API docs",
        "link_docs_desc": "OpenAPI (Swagger UI)",
        "link_healthz": "Health",
        "link_healthz_desc": "/healthz: service and database",
        "link_metrics": "Metrics",
        "link_metrics_desc": "/metrics: Prometheus metrics",
        "page_title": "Checkout",
        "shop_name": "Haetae Demo Shop",
        "order_title": "Your order",
        "item_name": "Haetae tumbler (500 ml)",
        "item_qty": "1 item",
        "total": "Total",
        "card_title": "Card details",
        "card_number": "Card number",
        "expiry": "Expiry date",
        "expiry_hint": "MM/YY",
        "cvc": "Security code",
        "cvc_hint": "3 digits on the back",
        "cvc_hint_amex": "4 digits on the front",
        "birth": "Birth date (6 digits) or business number (10)",
        "birth_hint": "e.g. 900101",
        "password2": "First 2 digits of card password",
        "domestic_note": "Korean card check: enter your birth date (business number for a "
        "corporate card) and the first 2 digits of the card password.",
        "pay": "Pay {amount}",
        "paying": "Paying…",
        "approved_title": "Payment complete",
        "approved_amount": "Amount",
        "approved_card": "Card",
        "approved_code": "Approval code",
        "new_order": "Try again with a new order",
        "challenge_title": "Verify it's you",
        "challenge_text": "Enter the 6-digit code we sent to your inbox.",
        "otp": "Verification code",
        "otp_submit": "Verify and pay",
        "inbox_title": "Demo inbox",
        "inbox_note": "In a real service this reaches the customer by app or text message.",
        "inbox_empty": "No messages yet.",
        "inbox_refresh": "Refresh",
        "network": "Could not reach the server. Check your connection and pay again.",
        "test_cards": "Test cards",
        "secure_note": "Card details are sent over an encrypted connection and not kept by "
        "the shop.",
        "brand_domestic": "Korean card",
        "lang_label": "Language",
        "home": "Console",
    },
}

# Shown on the page so a visitor can try each path; these are the simulator's public numbers.
TEST_CARDS: tuple[tuple[str, str], ...] = (
    ("4242 4242 4242 4242", "Visa: approved / 승인"),
    ("4000 0000 0000 3220", "Visa: step-up / 추가 인증"),
    ("4000 0000 0000 9995", "Visa: insufficient funds / 잔액 부족"),
    ("3782 822463 10005", "Amex: approved / 승인"),
    ("9410 1234 5678 9010", "국내카드: 900101 / 12"),
)


def _render(request: Request, name: str, locale: Locale, **context: Any) -> HTMLResponse:
    return render(request, name, locale, LABELS, **context)


async def _demo_merchant(services: Services) -> Merchant:
    async with services.db.transaction() as session:
        return await get_or_create_merchant(session, DEMO_MERCHANT)


# --- pages and static files -------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def console_home(request: Request, lang: Annotated[str | None, Query()] = None) -> Any:
    return _render(request, "index.html", page_locale(request, lang))


@router.get("/checkout", response_class=HTMLResponse, dependencies=[Depends(require_demo)])
async def checkout_page(request: Request, lang: Annotated[str | None, Query()] = None) -> Any:
    locale = page_locale(request, lang)
    amount, currency = DEMO_ORDER["amount"], DEMO_ORDER["currency"]
    page = {
        "amount": amount,
        "currency": currency,
        "amountText": {loc: format_money(amount, currency, loc) for loc in ("ko", "en")},
        "customerPrefix": DEMO_CUSTOMER_PREFIX,
        "locale": locale,
        "labels": LABELS,
    }
    return _render(
        request,
        "checkout.html",
        locale,
        amount_text=format_money(amount, currency, locale),
        page=page,
        test_cards=TEST_CARDS,
    )


@router.get("/static/{name}")
async def console_static(name: str) -> FileResponse:
    media_type = _STATIC.get(name)
    if media_type is None:
        raise HaetaeError("not_found")
    return FileResponse(
        HERE / "static" / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )


# --- the checkout page's JSON endpoints -------------------------------------------------


@router.post("/console/checkout/payments", status_code=201, dependencies=[Depends(require_demo)])
async def checkout_create_payment(
    body: PaymentCreate,
    services: ServicesDep,
    locale: LocaleDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> Response:
    if not body.customer_id.startswith(DEMO_CUSTOMER_PREFIX):
        # The demo takes no key: it must not post step-up notices to real customers.
        raise HaetaeError(
            "request_invalid",
            field="customer_id",
            params={"field": "customer_id", "detail": f"must start with {DEMO_CUSTOMER_PREFIX}"},
        )
    merchant = await _demo_merchant(services)
    result = await services.payments.create(
        merchant, body, locale=locale, idempotency_key=idempotency_key
    )
    return result.to_response()


@router.post(
    "/console/checkout/payments/{payment_id}/challenge", dependencies=[Depends(require_demo)]
)
async def checkout_complete_challenge(
    payment_id: str, body: ChallengeIn, services: ServicesDep, locale: LocaleDep
) -> Response:
    merchant = await _demo_merchant(services)
    result = await services.payments.complete_challenge(merchant.id, payment_id, body.otp, locale)
    return result.to_response()


class DemoInboxItem(BaseModel):
    id: str
    kind: str
    title: str
    body: str
    created_at: datetime


class DemoInbox(BaseModel):
    items: list[DemoInboxItem]


@router.get("/console/demo/inbox/{customer_id}", dependencies=[Depends(require_demo)])
async def demo_inbox(customer_id: str, services: ServicesDep) -> DemoInbox:
    if not customer_id.startswith(DEMO_CUSTOMER_PREFIX):
        raise HaetaeError("not_found")
    async with services.db.sessions() as session:
        items = await list_inbox(session, customer_id, limit=DEMO_INBOX_LIMIT)
    return DemoInbox(items=[DemoInboxItem.model_validate(i, from_attributes=True) for i in items])


# Mounted last: each module owns its routes and labels.
router.include_router(access_router)
router.include_router(certificate_pages_router)
router.include_router(demo_inbox_router)
router.include_router(risk_rule_pages_router)
router.include_router(risk_review_pages_router)
router.include_router(case_pages_router)
router.include_router(fraud_report_pages_router)
router.include_router(demo_fraud_report_router)
