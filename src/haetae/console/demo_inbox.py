"""The customer app, as a demo page: a demo customer's banners, the login pop-up and the
in-app inbox, exactly as the app's API gives them (current_banners, list_inbox).

Demo mode only, and demo customers only (ids starting ``demo-``), like the checkout demo:
it takes no key, so it must never show a real customer's notices."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from haetae.console.access import require_demo
from haetae.console.pages import Labels, page_locale, render
from haetae.demo import DEMO_CUSTOMER_PREFIX
from haetae.deps import ServicesDep
from haetae.errors import HaetaeError
from haetae.notify.service import list_inbox
from haetae.notify.templates import format_seoul_datetime

router = APIRouter(include_in_schema=False)

INBOX_LIMIT = 20
# Kinds the app shows as a warning (red), not as information (blue).
ALERT_KINDS = frozenset({"certificate_reissued", "fraud_report_received"})

LABELS: Labels = {
    "ko": {
        "console_title": "해태 콘솔",
        "page_title": "해태뱅크 앱",
        "demo_note": "고객 앱 화면을 흉내 낸 데모입니다. 배너와 로그인 팝업, 알림함은 "
        "앱이 API로 받는 내용 그대로입니다.",
        "customer": "고객",
        "banners_title": "알림 배너",
        "banners_empty": "지금 보여 줄 배너가 없습니다.",
        "inbox_title": "알림함",
        "inbox_empty": "받은 알림이 없습니다.",
        "unread": "읽지 않음",
        "popup_label": "로그인 안내",
        "close": "닫기",
        "lang_label": "언어",
        "home": "콘솔",
    },
    "en": {
        "console_title": "Haetae console",
        "page_title": "Haetae Bank app",
        "demo_note": "A demo of the customer's app. The banners, the login pop-up and the "
        "inbox are what the app gets from the API.",
        "customer": "Customer",
        "banners_title": "Banners",
        "banners_empty": "No banner to show now.",
        "inbox_title": "Inbox",
        "inbox_empty": "No messages.",
        "unread": "Unread",
        "popup_label": "Notice at login",
        "close": "Close",
        "lang_label": "Language",
        "home": "Console",
    },
}


@router.get(
    "/demo/inbox/{customer_id}",
    response_class=HTMLResponse,
    dependencies=[Depends(require_demo)],
)
async def demo_inbox_page(
    customer_id: str,
    request: Request,
    services: ServicesDep,
    lang: Annotated[str | None, Query()] = None,
) -> Any:
    if not customer_id.startswith(DEMO_CUSTOMER_PREFIX):
        raise HaetaeError("not_found")
    locale = page_locale(request, lang)
    async with services.db.sessions() as session:
        banners = await services.certificates.banners(session, customer_id, locale)
        items = await list_inbox(session, customer_id, limit=INBOX_LIMIT)
    return render(
        request,
        "demo_inbox.html",
        locale,
        LABELS,
        customer_id=customer_id,
        banners=banners,
        # As GET /v1/customers/{id}/banners: the first banner is also the login pop-up.
        login_popup=banners[0] if banners else None,
        alert_kinds=ALERT_KINDS,
        items=[
            {
                "title": item.title,
                "body": item.body,
                "kind": item.kind,
                "read": item.read,
                "time": format_seoul_datetime(item.created_at, locale),
            }
            for item in items
        ],
    )
