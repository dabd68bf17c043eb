"""Rule and list routes for the bank's risk team (service keys with the ``risk`` scope)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from haetae.deps import ServicesDep, require_scope
from haetae.errors import HaetaeError
from haetae.risk.rules.schemas import (
    LIST_NAME,
    BacktestIn,
    BacktestOut,
    ListIn,
    ListOut,
    ListsOut,
    ListSummaryOut,
    RuleDetailOut,
    RuleIn,
    RuleOut,
    RulesOut,
    VersionOut,
)
from haetae.risk.rules.service import KEEP, ListView, RuleView
from haetae.security.api_keys import Principal

router = APIRouter(prefix="/v1/risk", tags=["risk rules"])
RiskPrincipal = Annotated[Principal, Depends(require_scope("risk"))]
ListName = Annotated[str, Path(pattern=LIST_NAME)]

_RULE_ERRORS: dict[int | str, dict[str, str]] = {
    422: {"description": "rule_invalid: the message names the line and column"},
}


def _rule_out(rule: RuleView) -> RuleOut:
    return RuleOut(
        name=rule.name,
        version=rule.version,
        rule=rule.text,
        decision=rule.decision,
        kinds=rule.kinds,
        enabled=rule.enabled,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _list_out(view: ListView) -> ListOut:
    return ListOut(
        name=view.name, values=view.values, count=len(view.values), updated_at=view.updated_at
    )


@router.post(
    "/rules",
    response_model=RuleOut,
    status_code=201,
    responses={200: {"description": "A new version of an existing rule"}, **_RULE_ERRORS},
    summary="Create a rule, or a new version of it",
)
async def save_rule(
    body: RuleIn, response: Response, services: ServicesDep, principal: RiskPrincipal
) -> RuleOut:
    saved = await services.rules.save(
        body.name,
        body.rule,
        author=principal.name,
        kinds=body.kinds if "kinds" in body.model_fields_set else KEEP,
        enabled=body.enabled,
    )
    if not saved.created:
        response.status_code = 200
    return _rule_out(saved.rule)


@router.get("/rules", response_model=RulesOut, summary="Every rule, enabled or not")
async def list_rules(services: ServicesDep, _: RiskPrincipal) -> RulesOut:
    return RulesOut(rules=[_rule_out(r) for r in await services.rules.all()])


@router.post(
    "/rules/backtest",
    response_model=BacktestOut,
    responses={503: {"description": "No event history to run on"}, **_RULE_ERRORS},
    summary="What a rule would have done to past events",
)
async def backtest_rule(body: BacktestIn, services: ServicesDep, _: RiskPrincipal) -> BacktestOut:
    if body.since is not None and body.until is not None and body.since >= body.until:
        raise HaetaeError(
            "request_invalid",
            field="until",
            params={"field": "until", "detail": "must be later than since"},
        )
    result = await services.rules.backtest(
        body.rule, kinds=body.kinds, since=body.since, until=body.until
    )
    return BacktestOut.model_validate(asdict(result))


@router.get("/rules/{name}", response_model=RuleDetailOut, summary="A rule with its versions")
async def get_rule(name: str, services: ServicesDep, _: RiskPrincipal) -> RuleDetailOut:
    rule, versions = await services.rules.get(name)
    return RuleDetailOut(
        **_rule_out(rule).model_dump(),
        versions=[
            VersionOut(
                version=v.version,
                rule=v.text,
                decision=v.decision,
                created_at=v.created_at,
                created_by=v.created_by,
            )
            for v in versions
        ],
    )


@router.post("/rules/{name}/enable", response_model=RuleOut, summary="Put a rule in force")
async def enable_rule(name: str, services: ServicesDep, _: RiskPrincipal) -> RuleOut:
    return _rule_out(await services.rules.set_enabled(name, True))


@router.post("/rules/{name}/disable", response_model=RuleOut, summary="Take a rule out of force")
async def disable_rule(name: str, services: ServicesDep, _: RiskPrincipal) -> RuleOut:
    return _rule_out(await services.rules.set_enabled(name, False))


@router.get("/lists", response_model=ListsOut, summary="Every named list")
async def list_lists(services: ServicesDep, _: RiskPrincipal) -> ListsOut:
    return ListsOut(
        lists=[
            ListSummaryOut(name=name, count=count, updated_at=updated_at)
            for name, count, updated_at in await services.rules.lists()
        ]
    )


@router.get("/lists/{name}", response_model=ListOut, summary="A named list's values")
async def get_list(name: ListName, services: ServicesDep, _: RiskPrincipal) -> ListOut:
    return _list_out(await services.rules.get_list(name))


@router.put("/lists/{name}", response_model=ListOut, summary="Set a named list's values")
async def put_list(
    name: ListName, body: ListIn, services: ServicesDep, _: RiskPrincipal
) -> ListOut:
    return _list_out(await services.rules.put_list(name, body.values))
