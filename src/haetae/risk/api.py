"""Decision routes for the bank's systems and its analysts (service keys, scope ``risk``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from haetae.catalog import Locale
from haetae.deps import LocaleDep, ServicesDep, require_scope
from haetae.lean_routes import LeanRoute
from haetae.risk.decisions.models import DecisionRecord
from haetae.risk.decisions.schemas import (
    AssessmentOut,
    DecisionOut,
    LabelIn,
    ReasonOut,
    ReviewQueueOut,
    RuleHitOut,
    WarningOut,
)
from haetae.risk.events import RiskEvent
from haetae.risk.service import Assessment
from haetae.security.api_keys import Principal

router = APIRouter(prefix="/v1/risk", tags=["risk decisions"], route_class=LeanRoute)
RiskPrincipal = Annotated[Principal, Depends(require_scope("risk"))]


def assessment_out(assessment: Assessment, locale: Locale) -> AssessmentOut:
    warning = assessment.warning
    return AssessmentOut(
        decision_id=assessment.decision_id,
        decision=assessment.decision,
        score=assessment.score,
        reasons=[
            ReasonOut(code=r.code, message=r.ko if locale == "ko" else r.en)
            for r in assessment.reasons
        ],
        rule_hits=[
            RuleHitOut(name=h.name, version=h.version, decision=h.decision)
            for h in assessment.rule_hits
        ],
        model_version=assessment.model_version,
        warning=None
        if warning is None
        else WarningOut(
            code=warning.code,
            message=warning.message,
            next_step=warning.next_step,
            delay_minutes=warning.delay_minutes,
            release_at=warning.release_at,
        ),
    )


def decision_out(record: DecisionRecord) -> DecisionOut:
    return DecisionOut.model_validate(record, from_attributes=True)


@router.post("/evaluate", response_model=AssessmentOut)
async def evaluate(
    event: RiskEvent, services: ServicesDep, locale: LocaleDep, _: RiskPrincipal
) -> AssessmentOut:
    """Score one event and decide: ``allow``, ``challenge``, ``review`` or ``block``."""
    return assessment_out(await services.risk.evaluate(event, locale=locale), locale)


@router.get("/decisions/{decision_id}", response_model=DecisionOut)
async def get_decision(decision_id: str, services: ServicesDep, _: RiskPrincipal) -> DecisionOut:
    return decision_out(await services.decisions.get(decision_id))


@router.get("/reviews", response_model=ReviewQueueOut)
async def review_queue(
    services: ServicesDep,
    _: RiskPrincipal,
    status: Annotated[str, Query(pattern="^(open|labelled)$")] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ReviewQueueOut:
    """Decisions waiting for an analyst (oldest first), or the latest labelled."""
    records = await services.decisions.queue(status, limit)
    return ReviewQueueOut(items=[decision_out(r) for r in records])


@router.post("/reviews/{decision_id}/label", response_model=DecisionOut)
async def label(
    decision_id: str, body: LabelIn, services: ServicesDep, principal: RiskPrincipal
) -> DecisionOut:
    """An analyst's verdict; labelled decisions become training data (``haetae train``)."""
    record = await services.decisions.label(
        decision_id, body.label, by=principal.name, note=body.note, now=services.clock()
    )
    return decision_out(record)
