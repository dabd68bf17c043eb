"""The analysts' fraud case pages: the queue (most urgent first, with the time left on each
case's current timer), a case (its timers, people, accounts, protective actions with a lift
form, the next steps the process allows, assignment, notes and the audit trail). The call
centre's report form, which files a case and opens it here, is in fraud_report_pages.

Behind the console login with the ``cases`` scope (access.py). Forms are POSTs that pass the
Origin check and redirect back to the case (a refresh does not send them twice); a form the
case service refuses comes back as the case page with the reason in the page's language
and the catalog's status (422, 409, 404), never as a JSON error or a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from haetae.cases import process
from haetae.cases.service import CaseView
from haetae.catalog import Locale, format_money
from haetae.console.access import CASES, COOKIE, SameOrigin, console_user, login_redirect
from haetae.console.case_labels import CASE_LABELS, CASE_PAGE_LABELS, REPORT_FORM_LABELS
from haetae.console.case_report_form import parse_amount
from haetae.console.case_view import (
    action_rows,
    due_of,
    next_states,
    queue_row,
    sla_rows,
    trail_rows,
)
from haetae.console.pages import ANALYST_LABELS, merge_labels, page_locale, render
from haetae.currencies import CURRENCIES
from haetae.deps import ServicesDep
from haetae.errors import HaetaeError
from haetae.notify.templates import format_seoul_datetime
from haetae.services import Services

router = APIRouter(include_in_schema=False)

QUEUE = CASES.prefix
QUEUE_LIMIT = 200
LABELS = merge_labels(ANALYST_LABELS, CASE_LABELS, REPORT_FORM_LABELS, CASE_PAGE_LABELS)
# What a successful form says on the case page it redirects to.
DONE = frozenset({"reported", "moved", "assigned", "noted", "lifted"})

LangField = Annotated[str | None, Form()]
# Generous caps against abuse; the exact limits are checked so the page can say so.
ShortField = Annotated[str, Form(max_length=1000)]
LongField = Annotated[str, Form(max_length=20_000)]


def case_url(case_id: str, locale: Locale, **query: str) -> str:
    return f"{QUEUE}/{quote(case_id, safe='')}?{urlencode({'lang': locale, **query})}"


# --- the queue ----------------------------------------------------------------------------


async def _queue_page(
    request: Request,
    services: Services,
    locale: Locale,
    *,
    missing: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    now, t = services.clock(), LABELS[locale]
    rows = [queue_row(c, now, t, locale) for c in await services.cases.queue(limit=QUEUE_LIMIT)]
    return render(
        request,
        "cases.html",
        locale,
        LABELS,
        status_code=status_code,
        rows=rows,
        overdue=sum(1 for row in rows if row.due.overdue),
        limit=QUEUE_LIMIT,
        missing=missing,
        signed_in=COOKIE in request.cookies,
        nav="cases",
    )


@router.get(QUEUE, response_class=HTMLResponse)
async def case_queue_page(
    request: Request, services: ServicesDep, lang: Annotated[str | None, Query()] = None
) -> Response:
    locale = page_locale(request, lang)
    if await console_user(request, services, CASES) is None:
        return login_redirect(request, locale)
    return await _queue_page(request, services, locale)


# --- a case -------------------------------------------------------------------------------


def error_text(services: Services, error: HaetaeError, locale: Locale) -> str:
    rendered = services.catalog.render_error(error.code, locale, params=error.params)
    return f"{rendered.message} {rendered.next_step}"


def error_status(services: Services, error: HaetaeError) -> int:
    return error.status_code or services.catalog.entry(error.code).status


async def _case_page(
    request: Request,
    services: Services,
    locale: Locale,
    view: CaseView,
    user: str,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    kept: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    case, now, t = view.case, services.clock(), LABELS[locale]
    currency = CURRENCIES.get(case.currency)
    actions = action_rows(view.actions, locale)
    final = case.state in process.FINAL_STATES
    # An error whose form is not on the page (an action lifted meanwhile, an unknown one,
    # a case that has ended) is shown at the top instead.
    placed = {"assign", "note", *(f"lift-{a.id}" for a in actions if a.liftable)}
    if not final:
        placed.add("process")
    errors = errors or {}
    return render(
        request,
        "case.html",
        locale,
        LABELS,
        status_code=status_code,
        case=case,
        due=due_of(case, now, t, locale),
        amount=format_money(case.amount, case.currency, locale),
        refund=format_money(case.refund_amount, case.currency, locale)
        if case.refund_amount is not None
        else None,
        occurred=format_seoul_datetime(case.occurred_at, locale) if case.occurred_at else None,
        received=format_seoul_datetime(case.received_at, locale),
        accounts=[
            (a, format_money(a.amount, case.currency, locale) if a.amount is not None else None)
            for a in view.accounts
        ],
        actions=actions,
        slas=sla_rows(case, now, t, locale),
        trail=trail_rows(view, t, locale),
        chain_broken_at=view.chain_broken_at,
        next_states=next_states(case),
        final=final,
        currency=currency.alpha if currency else case.currency,
        user=user,
        done=done if done in DONE else None,
        errors=errors,
        page_errors=[text for form, text in errors.items() if form not in placed],
        kept=kept or {},
        signed_in=COOKIE in request.cookies,
        nav="cases",
    )


@router.get(f"{QUEUE}/{{case_id}}", response_class=HTMLResponse)
async def case_page(
    request: Request,
    services: ServicesDep,
    case_id: str,
    lang: Annotated[str | None, Query()] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    locale = page_locale(request, lang)
    user = await console_user(request, services, CASES)
    if user is None:
        return login_redirect(request, locale)
    try:
        view = await services.cases.get(case_id)
    except HaetaeError as error:
        if error.code != "case_not_found":
            raise
        text = error_text(services, error, locale)
        return await _queue_page(request, services, locale, missing=text, status_code=404)
    return await _case_page(request, services, locale, view, user, done=done)


CaseChange = Callable[[str], Awaitable[CaseView]]


async def _change(
    request: Request,
    services: Services,
    case_id: str,
    lang: str | None,
    *,
    form: str,
    done: str,
    kept: dict[str, str],
    problem: str | None,
    change: CaseChange,
) -> Response:
    """One case form: sign-in, the page's own check (``problem``: a label key, or None),
    then the service (``change``, given the analyst); back to the case, or the case page
    with the error at ``form``."""
    locale = page_locale(request, lang)
    user = await console_user(request, services, CASES)
    if user is None:
        return login_redirect(request, locale, f"{QUEUE}/{quote(case_id, safe='')}")
    message = LABELS[locale][problem] if problem else None
    status = 422
    if message is None:
        try:
            view = await change(user)
        except HaetaeError as error:
            if error.code != "case_not_found":
                message = error_text(services, error, locale)
                status = error_status(services, error)
        else:
            anchor = "#actions" if done == "lifted" else f"#{form}"
            return RedirectResponse(case_url(view.case.id, locale, done=done) + anchor, 303)
    try:
        view = await services.cases.get(case_id)
    except HaetaeError as error:
        if error.code != "case_not_found":
            raise
        text = error_text(services, error, locale)
        return await _queue_page(request, services, locale, missing=text, status_code=404)
    errors = {form: message or ""}
    return await _case_page(
        request, services, locale, view, user, errors=errors, kept=kept, status_code=status
    )


def _minor_units(amount: int, currency: str) -> int:
    """A whole amount as typed (won, dollars) in the currency's minor units."""
    known = CURRENCIES.get(currency)
    return amount * 10 ** (known.exponent if known else 2)


@router.post(f"{QUEUE}/{{case_id}}/transition", dependencies=[SameOrigin])
async def move_case(
    request: Request,
    services: ServicesDep,
    case_id: str,
    state: ShortField = "",
    reason: LongField = "",
    refund_amount: ShortField = "",
    lang: LangField = None,
) -> Response:
    reason = reason.replace("\r\n", "\n").strip()
    problem: str | None = None
    refund: int | None = None
    if state not in process.STATES:
        problem = "error_state"
    elif len(reason) > 2000:
        problem = "error_reason_long"
    else:
        try:
            refund = parse_amount(refund_amount)
        except ValueError:
            problem = "error_refund_amount"

    async def change(user: str) -> CaseView:
        if refund is None:
            minor = None
        else:
            minor = _minor_units(refund, (await services.cases.get(case_id)).case.currency)
        return await services.cases.transition(
            case_id, state, actor=user, reason=reason, refund_amount=minor
        )

    kept = {"state": state, "reason": reason, "refund_amount": refund_amount}
    return await _change(
        request, services, case_id, lang, form="process", done="moved", kept=kept,
        problem=problem, change=change,
    )  # fmt: skip


@router.post(f"{QUEUE}/{{case_id}}/assign", dependencies=[SameOrigin])
async def assign_case(
    request: Request,
    services: ServicesDep,
    case_id: str,
    assignee: ShortField = "",
    lang: LangField = None,
) -> Response:
    name = assignee.strip()

    async def change(user: str) -> CaseView:
        return await services.cases.assign(case_id, name, actor=user)

    return await _change(
        request, services, case_id, lang, form="assign", done="assigned",
        kept={"assignee": assignee},
        problem=None if 1 <= len(name) <= 200 else "error_assignee", change=change,
    )  # fmt: skip


@router.post(f"{QUEUE}/{{case_id}}/notes", dependencies=[SameOrigin])
async def add_note(
    request: Request,
    services: ServicesDep,
    case_id: str,
    text: LongField = "",
    lang: LangField = None,
) -> Response:
    note = text.replace("\r\n", "\n").strip()

    async def change(user: str) -> CaseView:
        return await services.cases.add_note(case_id, note, actor=user)

    return await _change(
        request, services, case_id, lang, form="note", done="noted", kept={"text": text},
        problem=None if 1 <= len(note) <= 5000 else "error_note", change=change,
    )  # fmt: skip


@router.post(f"{QUEUE}/{{case_id}}/actions/{{action_id}}/lift", dependencies=[SameOrigin])
async def lift_action(
    request: Request,
    services: ServicesDep,
    case_id: str,
    action_id: str,
    reason: LongField = "",
    lang: LangField = None,
) -> Response:
    why = reason.replace("\r\n", "\n").strip()
    problem = (
        "error_lift_reason" if len(why) < 3 else "error_reason_long" if len(why) > 2000 else None
    )

    async def change(user: str) -> CaseView:
        return await services.cases.lift_action(case_id, action_id, actor=user, reason=why)

    return await _change(
        request, services, case_id, lang, form=f"lift-{action_id}", done="lifted",
        kept={"lift_reason": reason}, problem=problem, change=change,
    )  # fmt: skip
