"""The call centre's fraud report form: a report taken on the phone, filed through the same
``services.cases.report`` the API calls, then the new case's page with the protective
actions taken.

Behind the console login with the ``cases`` scope (access.py), like the case pages; the form
passes the Origin check and carries a one-time token used as the report's Idempotency-Key,
so a double click or a resent form files one case. Problems are shown at their fields in
the page's language (case_report_form), the service's refusals in the catalog's words.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from haetae.cases import process
from haetae.catalog import Locale
from haetae.console.access import COOKIE, FRAUD_REPORTS, SameOrigin, console_user, login_redirect
from haetae.console.case_pages import (
    LABELS,
    LangField,
    LongField,
    ShortField,
    case_url,
    error_status,
    error_text,
)
from haetae.console.case_report_form import Problem, ReportForm, parse_report
from haetae.console.pages import page_locale, render
from haetae.deps import ServicesDep
from haetae.errors import HaetaeError

router = APIRouter(include_in_schema=False)

NEW_REPORT = f"{FRAUD_REPORTS.prefix}/new"
# The one-time token's shape (secrets.token_urlsafe); anything else files without a key.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _report_form_page(
    request: Request,
    locale: Locale,
    form: ReportForm,
    *,
    problems: dict[str, Problem] | None = None,
    failure: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    t = LABELS[locale]
    return render(
        request,
        "fraud_report_form.html",
        locale,
        LABELS,
        status_code=status_code,
        form=form.shown(),
        kinds=process.KINDS,
        errors={name: t[p.label].format(**p.params) for name, p in (problems or {}).items()},
        failure=failure,
        token=secrets.token_urlsafe(18),
        signed_in=COOKIE in request.cookies,
        nav="cases",
    )


@router.get(NEW_REPORT, response_class=HTMLResponse)
async def report_form_page(
    request: Request, services: ServicesDep, lang: Annotated[str | None, Query()] = None
) -> Response:
    locale = page_locale(request, lang)
    if await console_user(request, services, FRAUD_REPORTS) is None:
        return login_redirect(request, locale)
    return _report_form_page(request, locale, ReportForm())


@router.post(NEW_REPORT, response_class=HTMLResponse, dependencies=[SameOrigin])
async def file_report(
    request: Request,
    services: ServicesDep,
    kind: ShortField = "",
    reporter_customer_id: ShortField = "",
    reporter_phone: ShortField = "",
    victim_customer_id: ShortField = "",
    victim_account: ShortField = "",
    victim_card_id: ShortField = "",
    suspect_accounts: LongField = "",
    amount: ShortField = "",
    occurred_at: ShortField = "",
    description: LongField = "",
    token: ShortField = "",
    lang: LangField = None,
) -> Response:
    locale = page_locale(request, lang)
    user = await console_user(request, services, FRAUD_REPORTS)
    if user is None:
        return login_redirect(request, locale, NEW_REPORT)
    form = ReportForm.posted(
        kind=kind,
        reporter_customer_id=reporter_customer_id,
        reporter_phone=reporter_phone,
        victim_customer_id=victim_customer_id,
        victim_account=victim_account,
        victim_card_id=victim_card_id,
        suspect_accounts=suspect_accounts,
        amount=amount,
        occurred_at=occurred_at,
        description=description,
    )
    report, problems = parse_report(form, services.clock())
    if report is None:
        return _report_form_page(request, locale, form, problems=problems, status_code=422)
    key = f"console-report:{token}" if _TOKEN.fullmatch(token) else None
    try:
        view, _ = await services.cases.report(report, reported_by=user, idempotency_key=key)
    except HaetaeError as error:
        failure = error_text(services, error, locale)
        status = error_status(services, error)
        return _report_form_page(request, locale, form, failure=failure, status_code=status)
    return RedirectResponse(
        case_url(view.case.id, locale, done="reported") + "#actions", status_code=303
    )
