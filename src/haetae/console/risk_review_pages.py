"""The analysts' review queue: decisions of ``review`` waiting for a verdict (oldest first),
each labelled fraud or genuine from the queue (with an optional note), which takes it off
the queue; and a decision's details (its feature values and event).

Behind the console login with the ``risk`` scope (access.py); the label form is a POST that
passes the Origin check and redirects back to the queue.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from haetae.console.access import COOKIE, RISK, SameOrigin, console_user, login_redirect
from haetae.console.pages import ANALYST_LABELS, Labels, merge_labels, page_locale, render
from haetae.console.risk_decision_view import TOP_REASONS, decision_row, value_rows
from haetae.console.risk_labels import RISK_LABELS
from haetae.deps import ServicesDep
from haetae.notify.templates import format_seoul_datetime
from haetae.risk.decisions.service import Label

router = APIRouter(include_in_schema=False)

PAGE = "/console/risk/reviews"
QUEUE_LIMIT = 100

_OWN_LABELS: Labels = {
    "ko": {
        "page_title": "검토 대기열",
        "queue_title": "검토를 기다리는 이벤트",
        "queue_note": "'검토' 판단을 받은 이벤트를 오래된 순서로 {limit}건까지 보여 줍니다. 사기나 "
        "정상으로 판정하면 대기열에서 빠지고, 판정은 모델의 학습 데이터가 됩니다.",
        "queue_count": "{count}건 대기 중",
        "queue_empty": "검토를 기다리는 이벤트가 없습니다.",
        "labelled": "판정을 저장했습니다: {label}",
        "col_time": "발생 시각",
        "col_kind": "종류",
        "col_customer": "고객",
        "col_amount": "금액",
        "col_score": "점수",
        "col_hits": "걸린 규칙",
        "col_reasons": "주요 사유",
        "details": "자세히",
        "decision_title": "판단 상세",
        "back": "검토 대기열로",
        "summary_title": "요약",
        "f_decision": "판단",
        "f_score": "점수",
        "f_kind": "종류",
        "f_customer": "고객",
        "f_amount": "금액",
        "f_occurred": "발생 시각",
        "f_decided": "판단 시각",
        "f_model": "모델 버전",
        "f_label": "판정",
        "f_labelled_by": "판정한 사람",
        "f_labelled_at": "판정 시각",
        "f_note": "메모",
        "waiting": "검토 대기 중",
        "hits_title": "걸린 규칙",
        "hits_empty": "걸린 규칙이 없습니다.",
        "reasons_title": "점수의 주요 사유",
        "reasons_empty": "모델이 든 사유가 없습니다.",
        "features_title": "특성 값",
        "features_note": "판단할 때 본 값입니다. 값이 없으면 —로 표시합니다.",
        "event_title": "이벤트",
        "col_name": "이름",
        "col_value": "값",
    },
    "en": {
        "page_title": "Review queue",
        "queue_title": "Waiting for review",
        "queue_note": "Events decided 'review', oldest first (up to {limit}). A verdict of fraud "
        "or genuine takes one off the queue and becomes training data for the model.",
        "queue_count": "{count} waiting",
        "queue_empty": "Nothing is waiting for review.",
        "labelled": "Verdict saved: {label}",
        "col_time": "Time",
        "col_kind": "Kind",
        "col_customer": "Customer",
        "col_amount": "Amount",
        "col_score": "Score",
        "col_hits": "Rule hits",
        "col_reasons": "Top reasons",
        "details": "Details",
        "decision_title": "Decision",
        "back": "Back to the review queue",
        "summary_title": "Summary",
        "f_decision": "Decision",
        "f_score": "Score",
        "f_kind": "Kind",
        "f_customer": "Customer",
        "f_amount": "Amount",
        "f_occurred": "Happened",
        "f_decided": "Decided",
        "f_model": "Model version",
        "f_label": "Verdict",
        "f_labelled_by": "By",
        "f_labelled_at": "At",
        "f_note": "Note",
        "waiting": "Waiting for review",
        "hits_title": "Rule hits",
        "hits_empty": "No rule hit.",
        "reasons_title": "Reasons for the score",
        "reasons_empty": "The model gave no reason.",
        "features_title": "Feature values",
        "features_note": "The values the decision saw; — where there was none.",
        "event_title": "Event",
        "col_name": "Name",
        "col_value": "Value",
    },
}
LABELS = merge_labels(ANALYST_LABELS, RISK_LABELS, _OWN_LABELS)


@router.get(PAGE, response_class=HTMLResponse)
async def review_queue_page(
    request: Request,
    services: ServicesDep,
    lang: Annotated[str | None, Query()] = None,
    labelled: Annotated[Label | None, Query()] = None,
) -> Response:
    locale = page_locale(request, lang)
    if await console_user(request, services, RISK) is None:
        return login_redirect(request, locale)
    records = await services.decisions.queue("open", QUEUE_LIMIT)
    return render(
        request,
        "risk_reviews.html",
        locale,
        LABELS,
        rows=[decision_row(r, locale, reasons=TOP_REASONS) for r in records],
        limit=QUEUE_LIMIT,
        labelled=labelled,
        signed_in=COOKIE in request.cookies,
        nav="reviews",
    )


@router.post(f"{PAGE}/{{decision_id}}/label", dependencies=[SameOrigin])
async def label_decision(
    request: Request,
    services: ServicesDep,
    decision_id: str,
    label: Annotated[Label, Form()],
    note: Annotated[str, Form(max_length=500)] = "",
    lang: Annotated[str | None, Form()] = None,
) -> Response:
    locale = page_locale(request, lang)
    analyst = await console_user(request, services, RISK)
    if analyst is None:
        return login_redirect(request, locale, PAGE)
    await services.decisions.label(
        decision_id, label, by=analyst, note=note.strip() or None, now=services.clock()
    )
    query = urlencode({"lang": locale, "labelled": label})
    return RedirectResponse(f"{PAGE}?{query}", status_code=303)


@router.get("/console/risk/decisions/{decision_id}", response_class=HTMLResponse)
async def decision_page(
    request: Request,
    services: ServicesDep,
    decision_id: str,
    lang: Annotated[str | None, Query()] = None,
) -> Response:
    locale = page_locale(request, lang)
    if await console_user(request, services, RISK) is None:
        return login_redirect(request, locale)
    record = await services.decisions.get(decision_id)
    return render(
        request,
        "risk_decision.html",
        locale,
        LABELS,
        row=decision_row(record, locale),
        record=record,
        features=value_rows(record.features),
        event=value_rows(record.event),
        labelled_at=format_seoul_datetime(record.labelled_at, locale)
        if record.labelled_at
        else None,
        signed_in=COOKIE in request.cookies,
        nav="reviews",
    )
