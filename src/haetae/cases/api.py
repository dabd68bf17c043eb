"""Fraud-report and case routes (service keys, scope ``cases``): the 24-hour report channel
the bank's app, web and call centre call, and the analysts' case work."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Header, Query, Response, UploadFile
from pydantic import BaseModel

from haetae.cases import process
from haetae.cases.evidence import MAX_BYTES
from haetae.cases.models import Case, CaseEvidence
from haetae.cases.schemas import (
    ActionOut,
    AssignIn,
    FraudReportIn,
    LiftIn,
    NoteIn,
    ReportOut,
    TransitionIn,
)
from haetae.cases.service import CaseView
from haetae.deps import LocaleDep, ServicesDep, require_scope
from haetae.security.api_keys import Principal

router = APIRouter(tags=["fraud reports and cases"])

EVIDENCE_PATH = "/v1/cases/{case_id}/evidence"
# The request limit of the evidence upload (haetae.body_limit): the file's own limit plus
# room for the multipart envelope; the file is then checked against MAX_BYTES itself.
EVIDENCE_MAX_BODY = MAX_BYTES + 64 * 1024
CasesPrincipal = Annotated[Principal, Depends(require_scope("cases"))]


class HistoryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    type: str
    detail: dict[str, Any]
    hash: str


class SlaOut(BaseModel):
    name: str
    target_minutes: float
    elapsed_minutes: float
    remaining_minutes: float
    status: str


class AccountOut(BaseModel):
    bank_code: str
    account_number: str
    amount: int | None


class EvidenceOut(BaseModel):
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    added_by: str
    added_at: datetime


class CaseOut(BaseModel):
    id: str
    kind: str
    state: str
    state_due_at: datetime | None
    assignee: str | None
    reporter_customer_id: str | None
    victim_customer_id: str | None
    amount: int
    currency: str
    occurred_at: datetime | None
    description: str
    received_at: datetime
    first_action_at: datetime | None
    decided_at: datetime | None
    closed_at: datetime | None
    refund_amount: int | None
    origin_institution: str | None
    origin_case_id: str | None
    accounts: list[AccountOut]
    actions: list[ActionOut]
    sla: list[SlaOut]
    history: list[HistoryOut]
    audit_intact: bool


class QueueItemOut(BaseModel):
    id: str
    kind: str
    state: str
    assignee: str | None
    received_at: datetime
    state_due_at: datetime | None
    minutes_left: float | None


class QueueOut(BaseModel):
    items: list[QueueItemOut]


def sla_out(case: Case, now: datetime) -> list[SlaOut]:
    return [
        SlaOut(
            name=timer.name,
            target_minutes=timer.target.total_seconds() / 60,
            elapsed_minutes=round(timer.elapsed.total_seconds() / 60, 2),
            remaining_minutes=round(timer.remaining.total_seconds() / 60, 2),
            status=timer.status,
        )
        for timer in process.sla_status(
            case.received_at, case.first_action_at, case.decided_at, now
        )
    ]


def queue_item(case: Case, now: datetime) -> QueueItemOut:
    due = case.state_due_at
    return QueueItemOut(
        id=case.id,
        kind=case.kind,
        state=case.state,
        assignee=case.assignee,
        received_at=case.received_at,
        state_due_at=due,
        minutes_left=None if due is None else round((due - now).total_seconds() / 60, 1),
    )


def case_out(view: CaseView, now: datetime) -> CaseOut:
    case = view.case
    return CaseOut(
        **{name: getattr(case, name) for name in _CASE_FIELDS},
        accounts=[
            AccountOut(bank_code=a.bank_code, account_number=a.account_number, amount=a.amount)
            for a in view.accounts
        ],
        actions=[ActionOut.model_validate(a, from_attributes=True) for a in view.actions],
        sla=sla_out(case, now),
        history=[HistoryOut.model_validate(e, from_attributes=True) for e in view.history],
        audit_intact=view.chain_broken_at is None,
    )


_CASE_FIELDS = (
    "id", "kind", "state", "state_due_at", "assignee", "reporter_customer_id", "victim_customer_id",
    "amount", "currency", "occurred_at", "description", "received_at", "first_action_at",
    "decided_at", "closed_at", "refund_amount", "origin_institution", "origin_case_id",
)  # fmt: skip


@router.post("/v1/fraud-reports", response_model=ReportOut, status_code=201)
async def report_fraud(
    body: FraudReportIn,
    response: Response,
    services: ServicesDep,
    locale: LocaleDep,
    principal: CasesPrincipal,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> ReportOut:
    """Take a report at any hour and act on it at once: the answer lists every protective
    action taken (payment suspension, transfer hold, card block, ...) with the case id."""
    view, new = await services.cases.report(
        body, reported_by=principal.name, idempotency_key=idempotency_key, locale=locale
    )
    if not new:
        response.status_code = 200
    return ReportOut(
        case_id=view.case.id,
        state=view.case.state,
        received_at=view.case.received_at,
        actions=[ActionOut.model_validate(a, from_attributes=True) for a in view.actions],
    )


@router.get("/v1/cases", response_model=QueueOut)
async def case_queue(
    services: ServicesDep, _: CasesPrincipal, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> QueueOut:
    """Open cases, most urgent first, with the minutes left on the current step's timer."""
    now = services.clock()
    return QueueOut(items=[queue_item(c, now) for c in await services.cases.queue(limit=limit)])


@router.get("/v1/cases/{case_id}", response_model=CaseOut)
async def get_case(case_id: str, services: ServicesDep, _: CasesPrincipal) -> CaseOut:
    return case_out(await services.cases.get(case_id), services.clock())


@router.post("/v1/cases/{case_id}/transition", response_model=CaseOut)
async def transition(
    case_id: str,
    body: TransitionIn,
    services: ServicesDep,
    principal: CasesPrincipal,
) -> CaseOut:
    view = await services.cases.transition(
        case_id,
        body.state,
        actor=principal.name,
        reason=body.reason,
        refund_amount=body.refund_amount,
    )
    return case_out(view, services.clock())


@router.post("/v1/cases/{case_id}/assign", response_model=CaseOut)
async def assign(
    case_id: str, body: AssignIn, services: ServicesDep, principal: CasesPrincipal
) -> CaseOut:
    return case_out(
        await services.cases.assign(case_id, body.assignee, actor=principal.name), services.clock()
    )


@router.post("/v1/cases/{case_id}/notes", response_model=CaseOut)
async def add_note(
    case_id: str, body: NoteIn, services: ServicesDep, principal: CasesPrincipal
) -> CaseOut:
    return case_out(
        await services.cases.add_note(case_id, body.text, actor=principal.name), services.clock()
    )


@router.post("/v1/cases/{case_id}/actions/{action_id}/lift", response_model=CaseOut)
async def lift_action(
    case_id: str,
    action_id: str,
    body: LiftIn,
    services: ServicesDep,
    principal: CasesPrincipal,
) -> CaseOut:
    """Lift a protective action: an analyst's decision, with the reason kept in the trail."""
    view = await services.cases.lift_action(
        case_id, action_id, actor=principal.name, reason=body.reason
    )
    return case_out(view, services.clock())


@router.post(EVIDENCE_PATH, response_model=EvidenceOut, status_code=201)
async def add_evidence(
    case_id: str,
    services: ServicesDep,
    principal: CasesPrincipal,
    file: Annotated[UploadFile, File()],
) -> EvidenceOut:
    """An evidence file (PNG, JPEG, GIF, PDF or UTF-8 text, up to 10 MB)."""
    data = await file.read(MAX_BYTES + 1)
    item: CaseEvidence = await services.cases.add_evidence(
        case_id,
        file.filename or "evidence",
        data,
        actor=principal.name,
        directory=services.settings.data_dir / "evidence",
    )
    return EvidenceOut.model_validate(item, from_attributes=True)


@router.get(EVIDENCE_PATH, response_model=list[EvidenceOut])
async def list_evidence(
    case_id: str, services: ServicesDep, _: CasesPrincipal
) -> list[EvidenceOut]:
    await services.cases.get(case_id)  # 404 for an unknown case
    return [
        EvidenceOut.model_validate(e, from_attributes=True)
        for e in await services.cases.evidence_of(case_id)
    ]
