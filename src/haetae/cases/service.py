"""Fraud and phishing reports and the cases they open.

A report is one transaction: the case, its accounts, every protective action, the lists the
fraud rules read, the outbox events for the systems that enforce the rest, the notice to
the reporter and the first audit entries commit together, and the rules are reloaded before
the answer goes back, so a transfer to a reported account is blocked by the time the
reporter hears "received".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.bus.outbox import add_event
from haetae.cases import audit, evidence, process
from haetae.cases.actions import (
    LIST_OF_ACTION,
    PROTECTION_LISTS,
    PROTECTION_RULES,
    ActionPolicy,
    ActionTaker,
    take_report_actions,
)
from haetae.cases.models import Case, CaseAccount, CaseEvent, CaseEvidence, ProtectiveAction
from haetae.cases.schemas import FraudReportIn, Reporter, SuspectAccount
from haetae.db.base import new_id
from haetae.db.engine import Database
from haetae.errors import HaetaeError
from haetae.notify.channels.base import ChannelName
from haetae.notify.models import Customer
from haetae.notify.notices import send_notice
from haetae.notify.templates import NoticeTemplates
from haetae.risk.rules import repository as lists
from haetae.risk.rules.service import RuleBook
from haetae.timezones import SEOUL

log = structlog.get_logger(__name__)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Shares a case with affiliates inside the case's transaction (haetae.consortium).
Share = Callable[[AsyncSession, dict[str, Any]], Awaitable[object]]


def new_case_id(now: datetime) -> str:
    """``FR-YYYYMMDD-XXXXXX``: short enough to read out on the phone, random enough (30 bits
    a day) that case numbers reveal nothing about how many reports arrive."""
    suffix = "".join(_CROCKFORD[b % 32] for b in os.urandom(6))
    return f"FR-{now.astimezone(SEOUL):%Y%m%d}-{suffix}"


def request_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CaseView:
    case: Case
    accounts: list[CaseAccount]
    actions: list[ProtectiveAction]
    history: list[CaseEvent]
    chain_broken_at: int | None


class CaseService:
    def __init__(
        self,
        db: Database,
        templates: NoticeTemplates,
        rules: RuleBook,
        *,
        clock: Callable[[], datetime],
        policy: ActionPolicy,
        contact_phone: str,
        share: Share | None = None,
        holidays: Container[date] = (),
    ) -> None:
        self._db = db
        self._holidays = holidays  # days banks are closed, for business-day deadlines
        self._templates = templates
        self._rules = rules
        self._clock = clock
        self.policy = policy
        self._contact_phone = contact_phone
        self.share = share
        self._rules_ready = False

    # --- reports ------------------------------------------------------------------------

    async def report(
        self,
        report: FraudReportIn,
        *,
        reported_by: str,
        idempotency_key: str | None = None,
        locale: str = "ko",
        origin: tuple[str, str] | None = None,
    ) -> tuple[CaseView, bool]:
        """Open a case and act on it. Returns the case and whether it is new (False: the
        same Idempotency-Key came before with the same body). ``origin`` is (institution,
        case id) for a case opened from an affiliate's shared report."""
        body_hash = request_hash(report.model_dump(mode="json"))
        if idempotency_key is not None:
            earlier = await self._by_key(idempotency_key, body_hash)
            if earlier is not None:
                return earlier, False
        await self._ensure_protection_rules()
        now = self._clock()
        try:
            async with self._db.transaction() as session:
                case = await self._open(
                    session, report, reported_by, now, idempotency_key, body_hash, origin
                )
                taker = ActionTaker(session, case, actor=reported_by, now=now)
                await take_report_actions(taker, session, report, self.policy)
                if taker.taken:
                    await self._enter(
                        session, case, "protective_actions_taken", actor="haetae", now=now
                    )
                    case.first_action_at = now
                await self._acknowledge(session, case, report, locale, now)
                add_event(
                    session,
                    "case.opened",
                    {
                        "case_id": case.id,
                        "kind": case.kind,
                        "actions": [a.type for a in taker.taken],
                    },
                )
                if self.share is not None and origin is None and _shareable(report):
                    await self.share(session, _share_payload(case, report))
        except IntegrityError:
            if idempotency_key is None:
                raise
            earlier = await self._by_key(idempotency_key, body_hash)
            if earlier is None:
                raise
            return earlier, False
        if taker.lists_changed:  # in force here before the reporter is answered
            await self._rules.extend_lists(taker.list_additions, taker.list_touches)
        log.info("case.opened", case_id=case.id, kind=case.kind, actions=len(taker.taken))
        return await self.get(case.id), True

    async def open_linked(self, sender: str, message_id: str, payload: dict[str, Any]) -> str:
        """A case here for an affiliate's shared report: its accounts held here are
        suspended at once like any reported account (the joint response the Refund Act §3④
        asks for). Idempotent by the message: the same message opens one case."""
        report = FraudReportIn(
            kind=payload.get("kind", "other"),
            reporter=Reporter(customer_id=f"institution:{sender}"),
            suspect_accounts=[
                SuspectAccount(bank_code=a["bank_code"], account_number=a["account_number"])
                for a in payload.get("accounts", [])
            ],
            suspect_devices=list(payload.get("devices", [])),
            suspect_phones=list(payload.get("phones", [])),
            amount=int(payload.get("amount") or 0),
            currency=payload.get("currency") or "KRW",
            occurred_at=payload.get("occurred_at"),
            description=f"shared by institution {sender} (their case {payload.get('case_id')})",
        )
        view, _ = await self.report(
            report,
            reported_by=f"institution:{sender}",
            idempotency_key=f"consortium:{sender}:{message_id}",
            origin=(sender, str(payload.get("case_id") or "")),
        )
        return view.case.id

    async def _open(
        self,
        session: AsyncSession,
        report: FraudReportIn,
        reported_by: str,
        now: datetime,
        idempotency_key: str | None,
        body_hash: str,
        origin: tuple[str, str] | None,
    ) -> Case:
        case = Case(
            id=new_case_id(now),
            kind=report.kind,
            state="received",
            state_due_at=process.due_at(report.kind, "received", now, holidays=self._holidays),
            reporter_customer_id=report.reporter.customer_id,
            reporter_phone=report.reporter.phone,
            victim_customer_id=report.victim.customer_id,
            victim_account=report.victim.account_number,
            victim_card_id=report.victim.card_id,
            amount=report.amount,
            currency=report.currency,
            occurred_at=report.occurred_at,
            description=report.description,
            origin_institution=origin[0] if origin else None,
            origin_case_id=origin[1] if origin else None,
            idempotency_key=idempotency_key,
            request_hash=body_hash,
            reported_by=reported_by,
            received_at=now,
            updated_at=now,
        )
        session.add(case)
        await session.flush()  # a reused Idempotency-Key fails here, before anything else
        for account in report.suspect_accounts:
            session.add(
                CaseAccount(
                    case_id=case.id,
                    bank_code=account.bank_code,
                    account_number=account.account_number,
                    amount=account.amount,
                )
            )
        await audit.append(
            session,
            case.id,
            actor=reported_by,
            type_="received",
            detail={
                "kind": report.kind,
                "amount": report.amount,
                "currency": report.currency,
                "origin": list(origin) if origin else None,
            },
            at=now,
        )
        return case

    async def _by_key(self, key: str, body_hash: str) -> CaseView | None:
        async with self._db.sessions() as session:
            case = await session.scalar(select(Case).where(Case.idempotency_key == key))
        if case is None:
            return None
        if case.request_hash != body_hash:
            raise HaetaeError("idempotency_key_reused", field="Idempotency-Key")
        return await self.get(case.id)

    async def _ensure_protection_rules(self) -> None:
        """The lists and the rules that read them, once per process (an analyst's rule of
        the same name is left as it is)."""
        if self._rules_ready:
            return
        async with self._db.transaction() as session:
            for name in PROTECTION_LISTS:
                await lists.add_to_list(session, name, [], self._clock())
        await self._rules.reload()
        existing = {rule.name for rule in await self._rules.all()}
        for name, text, kinds in PROTECTION_RULES:
            if name not in existing:
                try:
                    await self._rules.save(name, text, author="haetae", kinds=list(kinds))
                except HaetaeError as error:  # another process saved it first
                    log.info("case.rule_exists", rule=name, code=error.code)
        self._rules_ready = True

    # --- reading ------------------------------------------------------------------------

    async def get(self, case_id: str) -> CaseView:
        async with self._db.sessions() as session:
            case = await session.get(Case, case_id)
            if case is None:
                raise HaetaeError("case_not_found", field="case_id", params={"case_id": case_id})
            accounts = list(
                await session.scalars(select(CaseAccount).where(CaseAccount.case_id == case_id))
            )
            actions = list(
                await session.scalars(
                    select(ProtectiveAction)
                    .where(ProtectiveAction.case_id == case_id)
                    .order_by(ProtectiveAction.taken_at, ProtectiveAction.id)
                )
            )
            history = list(
                await session.scalars(
                    select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
                )
            )
        return CaseView(case, accounts, actions, history, audit.verify(history))

    async def queue(self, *, limit: int = 200) -> list[Case]:
        """Open cases, most urgent first (overdue ones by how overdue, then by time left)."""
        now = self._clock()
        async with self._db.sessions() as session:
            open_cases = list(
                await session.scalars(
                    select(Case).where(Case.state.not_in(process.FINAL_STATES)).limit(5000)
                )
            )
        open_cases.sort(
            key=lambda c: process.urgency(c.kind, c.state, c.state_due_at, now), reverse=True
        )
        return open_cases[:limit]

    # --- an analyst's work --------------------------------------------------------------

    async def transition(
        self,
        case_id: str,
        target: str,
        *,
        actor: str,
        reason: str = "",
        refund_amount: int | None = None,
        locale: str = "ko",
    ) -> CaseView:
        now = self._clock()
        async with self._db.transaction() as session:
            case = await self._locked(session, case_id)
            try:
                process.check_transition(case.kind, case.state, target)
            except process.TransitionNotAllowed as error:
                raise HaetaeError(
                    "case_transition_not_allowed",
                    field="state",
                    params={"from": case.state, "to": target, "detail": str(error)},
                ) from None
            if target == "rejected" and not reason.strip():
                raise HaetaeError("case_reason_required", field="reason")
            if target == "refund_decided":
                if refund_amount is None:
                    raise HaetaeError("case_refund_amount_required", field="refund_amount")
                case.refund_amount = refund_amount
            await self._enter(session, case, target, actor=actor, now=now, reason=reason)
            if target == "protective_actions_taken" and case.first_action_at is None:
                case.first_action_at = now
            context: dict[str, Any] = {}
            if target == "refund_decided":
                context["refund_amount"] = refund_amount
            if target == "rejected":
                context["reason"] = reason
            await self._tell_reporter(
                session, case, _STEP_OF_STATE.get(target, "updated"), now, locale, context
            )
        return await self.get(case_id)

    async def assign(self, case_id: str, assignee: str, *, actor: str) -> CaseView:
        now = self._clock()
        async with self._db.transaction() as session:
            case = await self._locked(session, case_id)
            previous, case.assignee, case.updated_at = case.assignee, assignee, now
            await audit.append(
                session,
                case.id,
                actor=actor,
                type_="assigned",
                detail={"from": previous, "to": assignee},
                at=now,
            )
        return await self.get(case_id)

    async def add_note(self, case_id: str, text: str, *, actor: str) -> CaseView:
        now = self._clock()
        async with self._db.transaction() as session:
            case = await self._locked(session, case_id)
            case.updated_at = now
            await audit.append(
                session, case.id, actor=actor, type_="note", detail={"text": text}, at=now
            )
        return await self.get(case_id)

    async def lift_action(
        self, case_id: str, action_id: str, *, actor: str, reason: str, locale: str = "ko"
    ) -> CaseView:
        """Lift one protective action (an analyst, with a reason). A list value stays while
        another case's active action still holds it."""
        now = self._clock()
        relisted = False
        async with self._db.transaction() as session:
            case = await self._locked(session, case_id)
            action = await session.get(ProtectiveAction, action_id, with_for_update=True)
            if action is None or action.case_id != case.id:
                raise HaetaeError(
                    "case_action_not_found", field="action_id", params={"action_id": action_id}
                )
            if action.status not in ("active", "requested"):
                raise HaetaeError(
                    "case_action_not_active",
                    field="action_id",
                    params={"action_id": action_id, "status": action.status},
                )
            action.status, action.lifted_by, action.lifted_at, action.lift_reason = (
                "lifted",
                actor,
                now,
                reason,
            )
            list_name = LIST_OF_ACTION.get(action.type)
            if list_name is not None:
                values = list_values_of(action)
                still_held = await _values_held_elsewhere(session, action, values)
                release = [v for v in values if v not in still_held]
                if release:
                    await lists.remove_from_list(session, list_name, release, now)
                    relisted = True
            add_event(
                session,
                "case.action_lifted",
                {
                    "case_id": case.id,
                    "action_id": action.id,
                    "type": action.type,
                    "target": action.target,
                },
            )
            await audit.append(
                session,
                case.id,
                actor=actor,
                type_="action_lifted",
                detail={"action_id": action.id, "type": action.type, "reason": reason},
                at=now,
            )
            case.updated_at = now
            await self._tell_reporter(session, case, "action_lifted", now, locale, {})
        if relisted:
            await self._rules.reload()
        return await self.get(case_id)

    async def add_evidence(
        self, case_id: str, filename: str, data: bytes, *, actor: str, directory: Path
    ) -> CaseEvidence:
        content_type = evidence.check(data, filename)
        digest = evidence.store(directory, data)
        now = self._clock()
        async with self._db.transaction() as session:
            case = await self._locked(session, case_id)
            item = CaseEvidence(
                id=new_id("evd"),
                case_id=case.id,
                filename=Path(filename).name[:200] or "evidence",
                content_type=content_type,
                size=len(data),
                sha256=digest,
                added_by=actor,
                added_at=now,
            )
            session.add(item)
            case.updated_at = now
            await audit.append(
                session,
                case.id,
                actor=actor,
                type_="evidence",
                detail={"evidence_id": item.id, "sha256": digest, "size": len(data)},
                at=now,
            )
        return item

    async def evidence_of(self, case_id: str) -> list[CaseEvidence]:
        async with self._db.sessions() as session:
            return list(
                await session.scalars(
                    select(CaseEvidence)
                    .where(CaseEvidence.case_id == case_id)
                    .order_by(CaseEvidence.added_at)
                )
            )

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    async def _locked(session: AsyncSession, case_id: str) -> Case:
        case = await session.get(Case, case_id, with_for_update=True)
        if case is None:
            raise HaetaeError("case_not_found", field="case_id", params={"case_id": case_id})
        return case

    async def _enter(
        self,
        session: AsyncSession,
        case: Case,
        state: str,
        *,
        actor: str,
        now: datetime,
        reason: str = "",
    ) -> None:
        previous = case.state
        case.state, case.updated_at = state, now
        case.state_due_at = process.due_at(case.kind, state, now, holidays=self._holidays)
        if process.is_decision(case.kind, state) and case.decided_at is None:
            case.decided_at = now
        if state in process.FINAL_STATES:
            case.closed_at = now
        await audit.append(
            session,
            case.id,
            actor=actor,
            type_="state",
            detail={
                "from": previous,
                "to": state,
                "reason": reason,
                "due_at": case.state_due_at.isoformat() if case.state_due_at else None,
            },
            at=now,
        )
        add_event(
            session, "case.state_changed", {"case_id": case.id, "from": previous, "to": state}
        )

    async def _acknowledge(
        self, session: AsyncSession, case: Case, report: FraudReportIn, locale: str, now: datetime
    ) -> None:
        recipient = await self._reporter_id(session, case)
        if recipient is None:
            return
        await send_notice(
            session,
            self._templates,
            customer_id=recipient,
            kind="fraud_report_received",
            category="security",
            context={"case_id": case.id, "received_at": now, "contact_phone": self._contact_phone},
            now=now,
            channels=_reporter_channels(case),
            default_locale="en" if locale == "en" else "ko",
            subject=case.id,
        )
        if case.state == "protective_actions_taken":
            await self._tell_reporter(session, case, "actions_taken", now, locale, {})

    async def _tell_reporter(
        self,
        session: AsyncSession,
        case: Case,
        step: str,
        now: datetime,
        locale: str,
        extra: dict[str, Any],
    ) -> None:
        recipient = await self._reporter_id(session, case)
        if recipient is None:
            return
        context: dict[str, Any] = {
            "case_id": case.id,
            "step": step,
            "contact_phone": self._contact_phone,
            **extra,
        }
        if (
            step == "actions_taken"
            and process.application_needed(case.kind)
            and case.state_due_at is not None
        ):
            # Due at 00:00 the day after the last day: the customer is told the last day.
            context["deadline"] = case.state_due_at - timedelta(seconds=1)
        notification_id = await send_notice(
            session,
            self._templates,
            customer_id=recipient,
            kind="fraud_case_updated",
            category="security",
            context=context,
            now=now,
            channels=_reporter_channels(case),
            default_locale="en" if locale == "en" else "ko",
            subject=case.id,
        )
        await audit.append(
            session,
            case.id,
            actor="haetae",
            type_="notice",
            detail={"step": step, "notification_id": notification_id},
            at=now,
        )

    @staticmethod
    async def _reporter_id(session: AsyncSession, case: Case) -> str | None:
        """The reporter's customer id; a reporter known only by phone gets a contact row of
        their own so the notice engine can reach them by SMS."""
        if case.origin_institution is not None:
            return None  # the affiliate hears through the consortium's acknowledgement
        if case.reporter_customer_id:
            return case.reporter_customer_id
        if not case.reporter_phone:
            return None
        contact_id = f"phone:{case.reporter_phone.replace('-', '')}"
        if await session.get(Customer, contact_id) is None:
            session.add(Customer(id=contact_id, phone=case.reporter_phone))
            await session.flush()
        return contact_id


_STEP_OF_STATE = {
    "protective_actions_taken": "actions_taken",
    "damage_relief_applied": "relief_applied",
    "extinction_notice": "extinction_notice",
    "refund_decided": "refund_decided",
    "closed": "closed",
    "rejected": "rejected",
}


def _reporter_channels(case: Case) -> tuple[ChannelName, ...]:
    """A customer hears on every channel (a security matter); a reporter known only by
    phone, by SMS."""
    return ("inbox", "push", "sms") if case.reporter_customer_id else ("sms",)


def list_values_of(action: ProtectiveAction) -> list[str]:
    values = action.detail.get("list_values", [])
    return [str(v) for v in values] if isinstance(values, list) else []


def _shareable(report: FraudReportIn) -> bool:
    return bool(report.suspect_accounts or report.suspect_devices or report.suspect_phones)


def _share_payload(case: Case, report: FraudReportIn) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "kind": report.kind,
        "accounts": [
            {"bank_code": a.bank_code, "account_number": a.account_number}
            for a in report.suspect_accounts
        ],
        "devices": sorted(set(report.suspect_devices)),
        "phones": sorted(set(report.suspect_phones)),
        "amount": report.amount,
        "currency": report.currency,
        "occurred_at": report.occurred_at.isoformat() if report.occurred_at else None,
    }


async def _values_held_elsewhere(
    session: AsyncSession, action: ProtectiveAction, values: list[str]
) -> set[str]:
    others = await session.scalars(
        select(ProtectiveAction).where(
            ProtectiveAction.type == action.type,
            ProtectiveAction.target == action.target,
            ProtectiveAction.status == "active",
            ProtectiveAction.id != action.id,
        )
    )
    held: set[str] = set()
    for other in others:
        held.update(list_values_of(other))
    return held & set(values)
