"""The analysts' rules page: the rules with their state, a form to add a rule or make a new
version of one (errors inline, at the line and column), enable/disable, and a backtest of
the form's text.

Server-rendered forms: each change is a POST that redirects back (a refresh does not send
it twice); a form with errors comes back as the page with status 422. A backtest is a POST
too (the text may be long) and answers with the page and its figures; with no event
history it says so, with status 200, since the rest of the page works. Behind the console
login with the ``risk`` scope (access.py), and every POST passes the Origin check.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from haetae.catalog import Locale
from haetae.console.access import COOKIE, RISK, SameOrigin, console_user, login_redirect
from haetae.console.pages import ANALYST_LABELS, Labels, merge_labels, page_locale, render
from haetae.console.risk_labels import RISK_LABELS
from haetae.console.risk_rule_form import (
    RULE_TEXT_MAX,
    FormErrors,
    RuleForm,
    backtest_figures,
    check,
    rule_error,
)
from haetae.deps import ServicesDep
from haetae.errors import HaetaeError
from haetae.risk.events import EVENT_KINDS
from haetae.risk.rules.service import RuleView
from haetae.services import Services

router = APIRouter(include_in_schema=False)

PAGE = "/console/risk/rules"

_OWN_LABELS: Labels = {
    "ko": {
        "page_title": "위험 규칙",
        "rules_title": "규칙",
        "rules_note": "켜져 있는 규칙은 저장하는 즉시 판단에 적용됩니다. 같은 이름으로 저장하면 "
        "그 규칙의 새 버전이 됩니다.",
        "rules_empty": "아직 규칙이 없습니다.",
        "col_name": "이름",
        "col_decision": "판단",
        "col_rule": "규칙",
        "col_kinds": "대상 이벤트",
        "col_version": "버전",
        "col_state": "상태",
        "col_actions": "작업",
        "all_kinds": "모든 이벤트",
        "state_enabled": "사용 중",
        "state_disabled": "꺼짐",
        "enable": "켜기",
        "disable": "끄기",
        "edit": "고치기",
        "form_title": "규칙 추가·변경",
        "form_note": "규칙은 '판단 if 조건' 형식입니다. 판단은 allow, challenge, review, "
        "block 중 하나입니다.",
        "field_name": "규칙 이름",
        "name_hint": "영문·숫자와 _ . - (100자까지). 있는 이름이면 새 버전으로 저장됩니다.",
        "field_rule": "규칙",
        "rule_hint": "예: review if payee.is_new and amount >= 1_000_000",
        "field_kinds": "대상 이벤트",
        "kinds_hint": "하나도 고르지 않으면 모든 이벤트에 적용됩니다.",
        "save": "저장",
        "backtest": "백테스트",
        "saved": "규칙 {name}을(를) 저장했습니다 (버전 {version}).",
        "error_name": "이름은 영문이나 숫자로 시작하고 영문·숫자·_ . - 만 쓸 수 있습니다 "
        "(100자까지).",
        "error_kinds": "알 수 없는 이벤트 종류가 있습니다.",
        "error_rule_empty": "규칙을 입력해 주세요.",
        "error_rule_long": "규칙은 10,000자까지 쓸 수 있습니다.",
        "error_at": "{line}행 {column}열",
        "bt_title": "백테스트 결과",
        "bt_note": "저장하지 않은 이 규칙을 과거 이벤트에 적용했다면 어땠을지 보여 줍니다.",
        "bt_events": "살펴본 이벤트",
        "bt_hits": "걸린 이벤트",
        "bt_fraud_caught": "잡아낸 사기 (전체 사기 중)",
        "bt_false_positives": "오탐 (정상 거래)",
        "bt_unlabelled": "라벨 없는 이벤트",
        "bt_amount_at_stake": "걸린 금액",
        "bt_amount_caught": "잡아낸 사기 금액",
        "bt_precision": "정밀도",
        "bt_recall": "재현율",
        "bt_missing": "이력에 없어 모든 이벤트에서 값이 없는 것으로 계산한 이름: {names}",
        "bt_unavailable": "죄송합니다. 백테스트에 쓸 과거 이벤트 이력이 아직 없어 지금은 결과를 "
        "보여 드릴 수 없습니다. 규칙 저장은 그대로 하실 수 있습니다.",
    },
    "en": {
        "page_title": "Risk rules",
        "rules_title": "Rules",
        "rules_note": "Enabled rules apply to decisions as soon as they are saved. Saving under "
        "a rule's name makes a new version of it.",
        "rules_empty": "No rules yet.",
        "col_name": "Name",
        "col_decision": "Decision",
        "col_rule": "Rule",
        "col_kinds": "Event kinds",
        "col_version": "Version",
        "col_state": "State",
        "col_actions": "Actions",
        "all_kinds": "Every kind",
        "state_enabled": "Enabled",
        "state_disabled": "Disabled",
        "enable": "Enable",
        "disable": "Disable",
        "edit": "Edit",
        "form_title": "Add or change a rule",
        "form_note": "A rule reads '<decision> if <condition>'; the decision is allow, "
        "challenge, review or block.",
        "field_name": "Rule name",
        "name_hint": "Letters, digits and _ . - (up to 100). An existing name gets a new version.",
        "field_rule": "Rule",
        "rule_hint": "e.g. review if payee.is_new and amount >= 1_000_000",
        "field_kinds": "Event kinds",
        "kinds_hint": "None ticked: the rule applies to every kind.",
        "save": "Save",
        "backtest": "Backtest",
        "saved": "Saved rule {name} (version {version}).",
        "error_name": "A name starts with a letter or digit and has only letters, digits and "
        "_ . - (up to 100).",
        "error_kinds": "An event kind is not known.",
        "error_rule_empty": "Enter a rule.",
        "error_rule_long": "A rule may be up to 10,000 characters.",
        "error_at": "line {line}, column {column}",
        "bt_title": "Backtest",
        "bt_note": "What this rule, unsaved, would have done to past events.",
        "bt_events": "Events considered",
        "bt_hits": "Hits",
        "bt_fraud_caught": "Fraud caught (of all fraud)",
        "bt_false_positives": "False positives (genuine)",
        "bt_unlabelled": "Unlabelled hits",
        "bt_amount_at_stake": "Amount at stake",
        "bt_amount_caught": "Fraud amount caught",
        "bt_precision": "Precision",
        "bt_recall": "Recall",
        "bt_missing": "Names the history lacks, read as missing in every event: {names}",
        "bt_unavailable": "Sorry: there is no event history to run a backtest on yet, so there "
        "are no figures to show. You can still save the rule.",
    },
}
LABELS = merge_labels(ANALYST_LABELS, RISK_LABELS, _OWN_LABELS)

# The form's fields, as posted. Defaults of "": a browser sends an empty field as "", which
# FastAPI reads as missing; the page, not a JSON error, says what is wrong with it.
NameField = Annotated[str, Form(max_length=200)]
TextField = Annotated[str, Form(alias="rule", max_length=2 * RULE_TEXT_MAX)]
KindsField = Annotated[list[str] | None, Form()]
LangField = Annotated[str | None, Form()]


async def _page(
    request: Request,
    services: Services,
    locale: Locale,
    form: RuleForm,
    *,
    errors: FormErrors | None = None,
    rules: list[RuleView] | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return render(
        request,
        "risk_rules.html",
        locale,
        LABELS,
        status_code=status_code,
        rules=rules if rules is not None else await services.rules.all(),
        form=form,
        errors=(errors or FormErrors()).fields,
        kinds=EVENT_KINDS,
        text_max=RULE_TEXT_MAX,
        signed_in=COOKIE in request.cookies,
        nav="rules",
        **context,
    )


def _named(rules: list[RuleView], name: str | None) -> RuleView | None:
    return next((rule for rule in rules if rule.name == name), None) if name else None


@router.get(PAGE, response_class=HTMLResponse)
async def rules_page(
    request: Request,
    services: ServicesDep,
    lang: Annotated[str | None, Query()] = None,
    edit: Annotated[str | None, Query(max_length=200)] = None,
    saved: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    locale = page_locale(request, lang)
    if await console_user(request, services, RISK) is None:
        return login_redirect(request, locale)
    rules = await services.rules.all()
    editing = _named(rules, edit)
    return await _page(
        request,
        services,
        locale,
        RuleForm.of(editing) if editing else RuleForm(),
        rules=rules,
        saved=_named(rules, saved),
    )


@router.post(PAGE, response_class=HTMLResponse, dependencies=[SameOrigin])
async def save_rule(
    request: Request,
    services: ServicesDep,
    name: NameField = "",
    text: TextField = "",
    kinds: KindsField = None,
    lang: LangField = None,
) -> Response:
    locale = page_locale(request, lang)
    author = await console_user(request, services, RISK)
    if author is None:
        return login_redirect(request, locale, PAGE)
    form = RuleForm.posted(name, text, kinds or ())
    errors = check(form, need_name=True)
    if not errors:
        try:
            await services.rules.save(form.name, form.text, author=author, kinds=form.kinds_or_all)
        except HaetaeError as error:
            if error.code != "rule_invalid":
                raise
            errors.fields["rule"] = rule_error(error, form.text, services.catalog, locale)
    if errors:
        return await _page(request, services, locale, form, errors=errors, status_code=422)
    query = urlencode({"lang": locale, "saved": form.name})
    return RedirectResponse(f"{PAGE}?{query}#rule-{form.name}", status_code=303)


@router.post(f"{PAGE}/backtest", response_class=HTMLResponse, dependencies=[SameOrigin])
async def backtest_rule(
    request: Request,
    services: ServicesDep,
    text: TextField = "",
    name: NameField = "",
    kinds: KindsField = None,
    lang: LangField = None,
) -> Response:
    locale = page_locale(request, lang)
    if await console_user(request, services, RISK) is None:
        return login_redirect(request, locale, PAGE)
    form = RuleForm.posted(name, text, kinds or ())
    errors = check(form, need_name=False)
    if errors:
        return await _page(request, services, locale, form, errors=errors, status_code=422)
    try:
        result = await services.rules.backtest(form.text, kinds=form.kinds_or_all)
    except HaetaeError as error:
        if error.code == "rule_invalid":
            errors.fields["rule"] = rule_error(error, form.text, services.catalog, locale)
            return await _page(request, services, locale, form, errors=errors, status_code=422)
        if error.code != "backtest_unavailable":
            raise
        # The catalog's text says what is missing; the page says it kindly first.
        unavailable = services.catalog.render_error(error.code, locale, params=error.params)
        return await _page(request, services, locale, form, unavailable=unavailable)
    figures = backtest_figures(result, locale, LABELS[locale]["none"])
    return await _page(
        request, services, locale, form, figures=figures, missing=result.missing_columns
    )


@router.post(f"{PAGE}/{{name}}/{{action}}", dependencies=[SameOrigin])
async def switch_rule(
    request: Request,
    services: ServicesDep,
    name: str,
    action: Literal["enable", "disable"],
    lang: LangField = None,
) -> Response:
    locale = page_locale(request, lang)
    if await console_user(request, services, RISK) is None:
        return login_redirect(request, locale, PAGE)
    await services.rules.set_enabled(name, action == "enable")
    return RedirectResponse(f"{PAGE}?{urlencode({'lang': locale})}#rule-{name}", status_code=303)
