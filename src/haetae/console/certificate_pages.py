"""The analysts' certificate page: expiries per week for the next 12 weeks, drawn on the
server, and the certificate notices sent lately with each channel's delivery state.

It shows customer ids, so it is behind the console login (access.py)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from haetae.catalog import Locale
from haetae.console.access import CERTIFICATES, COOKIE, login_redirect, may_read_customer_data
from haetae.console.certificate_stats import (
    NOTICE_LIMIT,
    NoticeRow,
    WeekCount,
    recent_notices,
    weekly_expiries,
)
from haetae.console.charts import COLOURS, weekly_expiry_svg
from haetae.console.pages import ANALYST_LABELS, Labels, merge_labels, page_locale, render
from haetae.deps import ServicesDep
from haetae.notify.policy import CHANNELS
from haetae.notify.templates import format_seoul_date, format_seoul_datetime

router = APIRouter(include_in_schema=False)

_OWN_LABELS: Labels = {
    "ko": {
        "console_title": "해태 콘솔",
        "page_title": "인증서 만료 현황",
        "chart_title": "앞으로 12주 동안 만료되는 인증서",
        "chart_note": "유효한(폐기되지 않은) 인증서를 만료일이 속한 주(월요일 시작, "
        "한국 시간)별로 셉니다.",
        "chart_alt": "주별 만료 예정 인증서 수 막대 그래프: 공동인증서와 금융인증서",
        "total": "12주 합계 {count}건",
        "joint": "공동인증서",
        "financial": "금융인증서",
        "week": "주",
        "week_of": "시작일",
        "sum": "합계",
        "data_table": "표로 보기",
        "notices_title": "최근 보낸 인증서 안내",
        "notices_note": "최근 {limit}건. 채널별 전송 상태이며, 사유 코드는 상태 아래에 표시됩니다.",
        "notices_empty": "아직 보낸 인증서 안내가 없습니다.",
        "col_time": "보낸 시각",
        "col_customer": "고객",
        "col_kind": "안내",
        "kind_certificate_expiring": "만료 안내",
        "kind_certificate_renewed": "갱신 알림",
        "kind_certificate_reissued": "재발급 보안 알림",
        "channel_inbox": "앱 알림함",
        "channel_push": "푸시",
        "channel_sms": "문자",
        "channel_email": "이메일",
        "status_queued": "대기",
        "status_sending": "보내는 중",
        "status_sent": "보냄",
        "status_delivered": "전달됨",
        "status_failed": "실패",
        "status_suppressed": "보내지 않음",
        "status_none": "없음",
        "logout": "로그아웃",
        "lang_label": "언어",
        "home": "콘솔",
    },
    "en": {
        "console_title": "Haetae console",
        "page_title": "Certificate expiry",
        "chart_title": "Certificates expiring in the next 12 weeks",
        "chart_note": "Active (not revoked) certificates, counted by the week of their expiry "
        "(weeks start on Monday, Korea time).",
        "chart_alt": "Bar chart of certificates expiring per week: joint and financial",
        "total": "{count} in 12 weeks",
        "joint": "Joint certificate",
        "financial": "Financial certificate",
        "week": "Week",
        "week_of": "Starts",
        "sum": "Total",
        "data_table": "Show as a table",
        "notices_title": "Certificate notices sent lately",
        "notices_note": "The latest {limit}. Delivery state per channel; a reason code, where "
        "there is one, is under the state.",
        "notices_empty": "No certificate notice has been sent yet.",
        "col_time": "Sent",
        "col_customer": "Customer",
        "col_kind": "Notice",
        "kind_certificate_expiring": "Expiry reminder",
        "kind_certificate_renewed": "Renewal notice",
        "kind_certificate_reissued": "Reissue security alert",
        "channel_inbox": "App inbox",
        "channel_push": "Push",
        "channel_sms": "SMS",
        "channel_email": "E-mail",
        "status_queued": "Queued",
        "status_sending": "Sending",
        "status_sent": "Sent",
        "status_delivered": "Delivered",
        "status_failed": "Failed",
        "status_suppressed": "Not sent",
        "status_none": "None",
        "logout": "Sign out",
        "lang_label": "Language",
        "home": "Console",
    },
}
LABELS = merge_labels(ANALYST_LABELS, _OWN_LABELS)


def _week_rows(weeks: list[WeekCount], locale: Locale) -> list[dict[str, Any]]:
    return [
        {
            "iso_week": w.iso_week,
            # Noon UTC is the same calendar day in Seoul: the Monday shown as it is.
            "monday": format_seoul_date(datetime.combine(w.monday, time(12), UTC), locale),
            "joint": w.joint,
            "financial": w.financial,
            "total": w.total,
        }
        for w in weeks
    ]


def _notice_rows(notices: list[NoticeRow], locale: Locale) -> list[dict[str, Any]]:
    return [
        {
            "time": format_seoul_datetime(n.created_at, locale),
            "customer_id": n.customer_id,
            "kind": n.kind,
            "channels": [(channel, n.deliveries.get(channel)) for channel in CHANNELS],
        }
        for n in notices
    ]


@router.get("/console/certificates", response_class=HTMLResponse)
async def certificates_page(
    request: Request, services: ServicesDep, lang: Annotated[str | None, Query()] = None
) -> Response:
    locale = page_locale(request, lang)
    if not await may_read_customer_data(request, services, CERTIFICATES):
        return login_redirect(request, locale)
    async with services.db.sessions() as session:
        weeks = await weekly_expiries(session, services.clock())
        notices = await recent_notices(session)
    # Drawing takes ~0.1 s of CPU: off the event loop, which is serving payments.
    chart = await run_in_threadpool(weekly_expiry_svg, weeks)
    return render(
        request,
        "certificates.html",
        locale,
        LABELS,
        chart_svg=chart,
        colours=COLOURS,
        weeks=_week_rows(weeks, locale),
        total=sum(w.total for w in weeks),
        notices=_notice_rows(notices, locale),
        notice_limit=NOTICE_LIMIT,
        signed_in=COOKIE in request.cookies,
        nav="certificates",
    )
