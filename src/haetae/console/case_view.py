"""A case as the console shows it: times in Seoul, the time left on the current step's timer
(or how long it is overdue), money in the page's language, the SLA timers, the protective
actions and the audit trail in words, on top of the JSON API's own helpers (cases.api)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from haetae.cases import process
from haetae.cases.api import queue_item, sla_out
from haetae.cases.models import Case, CaseEvent, ProtectiveAction
from haetae.cases.service import CaseView
from haetae.catalog import Locale, format_money
from haetae.notify.templates import format_seoul_datetime

# Actions an analyst may still lift.
LIFTABLE = frozenset({"active", "requested"})


def duration_text(delta: timedelta, t: Mapping[str, str]) -> str:
    """``12분`` / ``3시간 5분`` / ``2일 4시간`` (``12 min`` / ``3 h 5 min`` / ``2 d 4 h``)."""
    minutes = int(abs(delta).total_seconds() // 60)
    if minutes == 0:
        return t["under_a_minute"]
    if minutes < 60:
        return t["minutes"].format(m=minutes)
    hours, minute = divmod(minutes, 60)
    if hours < 24:
        return t["hours"].format(h=hours, m=minute)
    days, hour = divmod(hours, 24)
    return t["days"].format(d=days, h=hour)


@dataclass(frozen=True, slots=True)
class Due:
    """The current step's timer: what it is for, when it runs out, the time left."""

    label: str
    at: str | None
    left: str | None
    overdue: bool


def due_label_key(kind: str, state: str) -> str:
    if state in process.FINAL_STATES:
        return "due_final"
    if state == "protective_actions_taken":
        route = "relief" if kind in process.RELIEF_KINDS else "direct"
        return f"due_{state}_{route}"
    return f"due_{state}"


def due_of(case: Case, now: datetime, t: Mapping[str, str], locale: Locale) -> Due:
    label = t.get(due_label_key(case.kind, case.state), t["none"])
    due = case.state_due_at
    if due is None or case.state in process.FINAL_STATES:
        return Due(label, None, None, False)
    overdue = due < now
    left = t["overdue" if overdue else "left"].format(time=duration_text(due - now, t))
    return Due(label, format_seoul_datetime(due, locale), left, overdue)


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: str
    kind: str
    state: str
    assignee: str | None
    received: str
    amount: str
    due: Due


def queue_row(case: Case, now: datetime, t: Mapping[str, str], locale: Locale) -> QueueRow:
    item = queue_item(case, now)  # the API's view: the same minutes left as GET /v1/cases
    return QueueRow(
        id=item.id,
        kind=item.kind,
        state=item.state,
        assignee=item.assignee,
        received=format_seoul_datetime(item.received_at, locale),
        amount=format_money(case.amount, case.currency, locale),
        due=due_of(case, now, t, locale),
    )


@dataclass(frozen=True, slots=True)
class SlaRow:
    name: str
    target: str
    due: str
    status: str
    left: str
    overdue: bool


def sla_rows(case: Case, now: datetime, t: Mapping[str, str], locale: Locale) -> list[SlaRow]:
    rows = []
    for sla in sla_out(case, now):
        remaining = timedelta(minutes=sla.remaining_minutes)
        overdue = sla.status == "breached"
        if sla.status == "met":
            left = t["left"].format(time=duration_text(remaining, t))
        else:
            left = t["overdue" if overdue else "left"].format(time=duration_text(remaining, t))
        target = timedelta(minutes=sla.target_minutes)
        rows.append(
            SlaRow(
                name=sla.name,
                target=duration_text(target, t),
                due=format_seoul_datetime(case.received_at + target, locale),
                status=sla.status,
                left=left,
                overdue=overdue,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class ActionRow:
    id: str
    type: str
    target: str
    status: str
    reason: str
    taken_by: str
    taken_at: str
    lifted_by: str | None
    lifted_at: str | None
    lift_reason: str | None
    liftable: bool


def action_rows(actions: Sequence[ProtectiveAction], locale: Locale) -> list[ActionRow]:
    return [
        ActionRow(
            id=a.id,
            type=a.type,
            target=a.target,
            status=a.status,
            reason=a.reason,
            taken_by=a.taken_by,
            taken_at=format_seoul_datetime(a.taken_at, locale),
            lifted_by=a.lifted_by,
            lifted_at=format_seoul_datetime(a.lifted_at, locale) if a.lifted_at else None,
            lift_reason=a.lift_reason,
            liftable=a.status in LIFTABLE,
        )
        for a in actions
    ]


@dataclass(frozen=True, slots=True)
class TrailRow:
    seq: int
    time: str
    actor: str
    type: str
    summary: str
    hash: str
    broken: bool


def _word(t: Mapping[str, str], prefix: str, value: object) -> str:
    return t.get(f"{prefix}{value}") or str(value)


def trail_summary(
    entry: CaseEvent, t: Mapping[str, str], locale: Locale, currency: str = "KRW"
) -> str:
    """One line saying what an audit entry recorded, in the page's language."""
    d: dict[str, Any] = dict(entry.detail)
    if entry.type == "received":
        kind, amount = _word(t, "kind_", d.get("kind")), int(d.get("amount") or 0)
        if not amount:
            return kind
        return f"{kind} · {format_money(amount, str(d.get('currency') or currency), locale)}"
    if entry.type == "action_taken":
        return (
            f"{_word(t, 'action_', d.get('type'))} · {d.get('target', '')} "
            f"({_word(t, 'action_status_', d.get('status'))})"
        )
    if entry.type == "action_lifted":
        return t["trail_lifted"].format(
            action=_word(t, "action_", d.get("type")), reason=d.get("reason") or t["none"]
        )
    if entry.type == "state":
        line = f"{_word(t, 'state_', d.get('from'))} → {_word(t, 'state_', d.get('to'))}"
        if d.get("reason"):
            line += " · " + t["trail_reason"].format(reason=d["reason"])
        return line
    if entry.type == "note":
        return str(d.get("text", ""))
    if entry.type == "assigned":
        return f"{d.get('from') or t['none']} → {d.get('to') or t['none']}"
    if entry.type == "notice":
        return t["trail_notice"].format(step=d.get("step", ""))
    if entry.type == "evidence":
        return t["trail_evidence"].format(
            sha=str(d.get("sha256", ""))[:12], size=f"{int(d.get('size') or 0):,}"
        )
    return ", ".join(f"{key}={d[key]}" for key in sorted(d))


def trail_rows(view: CaseView, t: Mapping[str, str], locale: Locale) -> list[TrailRow]:
    """The trail in order; from the first broken entry on, every row is marked: the chain
    no longer vouches for them."""
    broken_from = view.chain_broken_at
    return [
        TrailRow(
            seq=e.seq,
            time=format_seoul_datetime(e.at, locale),
            actor=e.actor,
            type=e.type,
            summary=trail_summary(e, t, locale, view.case.currency),
            hash=e.hash[:12],
            broken=broken_from is not None and e.seq >= broken_from,
        )
        for e in view.history
    ]


def next_states(case: Case) -> list[str]:
    """The states the case may move to now, in the process's order."""
    if case.kind not in process.KINDS or case.state not in process.STATES:
        return []
    allowed = process.allowed_targets(case.kind, case.state)
    return [state for state in process.STATES if state in allowed]
