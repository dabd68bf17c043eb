"""The damage-relief process for a fraud case as states with timers: pure, no I/O.

Telecom financial fraud (voice phishing, smishing, messenger impersonation, and account
takeovers whose money went out by transfer) follows the Telecom Financial Fraud Refund Act
(전기통신금융사기 피해 방지 및 피해금 환급에 관한 특별법) and its Enforcement Decree::

    received -> protective_actions_taken -> damage_relief_applied -> extinction_notice
             -> refund_decided -> closed

Card fraud, lost cards and other reports have no statutory relief procedure; the bank decides
a chargeback or compensation itself::

    received -> protective_actions_taken -> refund_decided -> closed

Any open state may go to ``rejected`` (with a reason, which the caller records); ``closed`` and
``rejected`` are final. Every number used, and where it comes from, is in
``docs/damage-relief.md``.

Times are timezone-aware in and UTC out. Calendar arithmetic (business days, months) is done
on dates in Asia/Seoul, and a deadline "on day D" ends when D ends in Seoul, i.e. at 00:00 Seoul
time on the following day.
"""

from __future__ import annotations

import calendar
import sys
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Literal

from haetae.timezones import SEOUL

State = Literal[
    "received",
    "protective_actions_taken",
    "damage_relief_applied",
    "extinction_notice",
    "refund_decided",
    "closed",
    "rejected",
]
STATES: tuple[State, ...] = (
    "received",
    "protective_actions_taken",
    "damage_relief_applied",
    "extinction_notice",
    "refund_decided",
    "closed",
    "rejected",
)
FINAL_STATES: frozenset[State] = frozenset({"closed", "rejected"})
OPEN_STATES: frozenset[State] = frozenset(STATES) - FINAL_STATES

Kind = Literal[
    "voice_phishing",
    "smishing",
    "messenger_impersonation",
    "account_takeover",
    "card_fraud",
    "lost_card",
    "other",
]
KINDS: tuple[Kind, ...] = (
    "voice_phishing",
    "smishing",
    "messenger_impersonation",
    "account_takeover",
    "card_fraud",
    "lost_card",
    "other",
)
# Kinds that may follow the Act's damage-relief path (money sent by transfer, Act §2(2)가·나).
# An account takeover may instead end in the bank's own compensation (no transfer to a fraud
# account), so it may take either route from protective_actions_taken.
RELIEF_KINDS: frozenset[Kind] = frozenset(
    {"voice_phishing", "smishing", "messenger_impersonation", "account_takeover"}
)
DIRECT_KINDS: frozenset[Kind] = frozenset(KINDS) - RELIEF_KINDS


def _table(moves: Mapping[State, Iterable[State]]) -> Mapping[State, frozenset[State]]:
    return MappingProxyType({state: frozenset(moves.get(state, ())) for state in STATES})


_RELIEF_MOVES = _table(
    {
        "received": ("protective_actions_taken", "rejected"),
        # closed: nothing left to recover, or the written application never came (Decree §3③).
        "protective_actions_taken": ("damage_relief_applied", "closed", "rejected"),
        # closed: balance at or under the small-balance amount and no request (Act §5①6),
        # or every victim withdrew the application (Decree §8①1).
        "damage_relief_applied": ("extinction_notice", "closed", "rejected"),
        # closed: the account holder's objection ended the procedure (Act §7, §8①2).
        "extinction_notice": ("refund_decided", "closed", "rejected"),
        "refund_decided": ("closed", "rejected"),
    }
)
_DIRECT_MOVES = _table(
    {
        "received": ("protective_actions_taken", "rejected"),
        # closed: e.g. a lost card blocked before anyone used it.
        "protective_actions_taken": ("refund_decided", "closed", "rejected"),
        "refund_decided": ("closed", "rejected"),
    }
)
_EITHER_MOVES = _table({state: _RELIEF_MOVES[state] | _DIRECT_MOVES[state] for state in STATES})

TRANSITIONS: Mapping[Kind, Mapping[State, frozenset[State]]] = MappingProxyType(
    {
        kind: (
            _EITHER_MOVES
            if kind == "account_takeover"
            else _RELIEF_MOVES
            if kind in RELIEF_KINDS
            else _DIRECT_MOVES
        )
        for kind in KINDS
    }
)
# Targets the caller must give a reason for (the reason itself is stored by the service).
REASON_REQUIRED: frozenset[State] = frozenset({"rejected"})


class TransitionNotAllowed(ValueError):
    """A move the process does not allow; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Timers:
    """Every time limit the process uses. Statutory ones are marked; the rest are the bank's
    own targets and may be tuned."""

    first_action: timedelta = timedelta(minutes=30)  # bank target: first protective action
    written_application_business_days: int = 3  # Decree §3②: after a phone/oral request
    notice_business_days: int = 2  # bank target: Act §5① "without delay" (request + notice)
    extinction_months: int = 2  # Act §9①, Decree §6③: rights lapse 2 months after the notice
    refund_decision_days: int = 14  # Act §10①: FSS decides within 14 days of the lapse
    payout: timedelta = timedelta(days=3)  # bank target: pay "without delay" (Act §10①)
    decision: timedelta = timedelta(days=15)  # bank target, after EFTA Decree §14② (15 days)


DEFAULT_TIMERS = Timers()

SlaName = Literal["first_action", "decision"]
SlaStatus = Literal["met", "breached", "running"]
SLA: Mapping[SlaName, timedelta] = MappingProxyType(
    {"first_action": DEFAULT_TIMERS.first_action, "decision": DEFAULT_TIMERS.decision}
)
# Small-balance rule (Act §5①6, Decree §6②): a suspended account holding no more than this
# goes to the extinction procedure only if a victim asks within 30 days of the suspension
# notice. The Act caps the amount at 30,000 KRW; the Decree sets it at 10,000 KRW.
SMALL_BALANCE_KRW = 10_000
SMALL_BALANCE_REQUEST_DAYS = 30


@dataclass(frozen=True, slots=True)
class SlaTimer:
    name: SlaName
    target: timedelta
    due_at: datetime
    elapsed: timedelta  # to the event, or to now while it has not happened
    remaining: timedelta  # target - elapsed: negative once breached
    status: SlaStatus


# --- validation ---------------------------------------------------------------------------


def _kind(value: str) -> Kind:
    if value not in KINDS:
        raise ValueError(f"unknown report kind {value!r}; expected one of {', '.join(KINDS)}")
    return value


def _state(value: str) -> State:
    if value not in STATES:
        raise ValueError(f"unknown case state {value!r}; expected one of {', '.join(STATES)}")
    return value


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(UTC)


# --- transitions --------------------------------------------------------------------------


def application_needed(kind: str) -> bool:
    """Whether the kind may need the victim's written damage-relief application."""
    return _kind(kind) in RELIEF_KINDS


def needs_reason(target: str) -> bool:
    return _state(target) in REASON_REQUIRED


def allowed_targets(kind: str, current: str) -> frozenset[State]:
    return TRANSITIONS[_kind(kind)][_state(current)]


def check_transition(kind: str, current: str, target: str) -> None:
    """Raise :class:`TransitionNotAllowed` unless a ``kind`` case may move from ``current``
    to ``target``."""
    if kind not in KINDS:
        raise TransitionNotAllowed(f"unknown report kind {kind!r}")
    for label, value in (("current", current), ("target", target)):
        if value not in STATES:
            raise TransitionNotAllowed(
                f"unknown {label} state {value!r}; states are {', '.join(STATES)}"
            )
    moves = TRANSITIONS[_kind(kind)]
    if current in FINAL_STATES:
        raise TransitionNotAllowed(f"the case is {current}, a final state: it cannot move")
    if current == target:
        raise TransitionNotAllowed(f"the case is already {current}")
    if not moves[_state(current)]:
        raise TransitionNotAllowed(f"a {kind} case never enters {current}")
    if target not in moves[_state(current)]:
        allowed = ", ".join(sorted(moves[_state(current)]))
        route = "direct" if kind in DIRECT_KINDS else "damage-relief"
        if kind == "account_takeover":
            route = "damage-relief or direct"
        raise TransitionNotAllowed(
            f"a {kind} case cannot go from {current} to {target} on the {route} route; "
            f"from {current} it can go to: {allowed}"
        )


# --- calendar -----------------------------------------------------------------------------


def is_business_day(day: date, holidays: Container[date] = ()) -> bool:
    """Monday to Friday and not in ``holidays`` (the caller's: ``BankHolidays`` in the
    service)."""
    return day.weekday() < 5 and day not in holidays


def add_business_days(day: date, count: int, holidays: Container[date] = ()) -> date:
    """The ``count``-th business day after ``day``; ``day`` itself is not counted (Civil Act
    §157: the first day of a period is not counted)."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    current = day
    while count:
        current += timedelta(days=1)
        if is_business_day(current, holidays):
            count -= 1
    return current


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later; the month's last day when it has no such day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of_seoul_day(day: date) -> datetime:
    """The instant ``day`` ends in Seoul (00:00 Seoul on the next day), in UTC."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=SEOUL).astimezone(UTC)


def seoul_date(at: datetime) -> date:
    return _utc(at, "at").astimezone(SEOUL).date()


def written_application_due(
    requested_at: datetime, *, holidays: Container[date] = (), timers: Timers = DEFAULT_TIMERS
) -> datetime:
    """When the written application for a phone/oral request is due: the end of the third
    business day after the day of the request (Decree §3②)."""
    last = add_business_days(
        seoul_date(requested_at), timers.written_application_business_days, holidays
    )
    return end_of_seoul_day(last)


def rights_lapse_at(notice_at: datetime, *, timers: Timers = DEFAULT_TIMERS) -> datetime:
    """When the account holder's rights lapse: 2 months after the FSS notice (Act §9①). Late
    victims' applications (Act §6①) and the holder's objections (Act §7①) close then too.

    Counted as the Civil Act counts months (§157, §160): the notice day is not counted and the
    period ends with the day numbered like the notice day, or the month's last day."""
    return end_of_seoul_day(add_months(seoul_date(notice_at), timers.extinction_months))


def refund_decision_due(notice_at: datetime, *, timers: Timers = DEFAULT_TIMERS) -> datetime:
    """When the FSS must have decided the refund: 14 days after the rights lapse (Act §10①)."""
    return rights_lapse_at(notice_at, timers=timers) + timedelta(days=timers.refund_decision_days)


# --- timers -------------------------------------------------------------------------------


def due_at(
    kind: str,
    state: str,
    entered_at: datetime,
    *,
    holidays: Container[date] = (),
    timers: Timers = DEFAULT_TIMERS,
    requested_at: datetime | None = None,
) -> datetime | None:
    """When the time limit of ``state``, entered at ``entered_at``, runs out (None when final).

    - ``received``: the first protective action (bank target, 30 minutes).
    - ``protective_actions_taken``: damage-relief kinds, the written application (3 business
      days after the request, Decree §3②; the request is ``requested_at`` when given, else
      ``entered_at``); direct kinds, the bank's decision (bank target, 15 days).
    - ``damage_relief_applied``: the FSS notice (bank target, 2 business days).
    - ``extinction_notice`` (``entered_at`` = the notice): the FSS's refund decision, 14 days
      after the rights lapse (Act §9①, §10①).
    - ``refund_decided``: the payout (bank target, 3 days)."""
    the_kind, the_state = _kind(kind), _state(state)
    entered = _utc(entered_at, "entered_at")
    if the_state in FINAL_STATES:
        return None
    if the_state == "received":
        return entered + timers.first_action
    if the_state == "protective_actions_taken":
        if the_kind in DIRECT_KINDS:
            return entered + timers.decision
        request = entered if requested_at is None else _utc(requested_at, "requested_at")
        return written_application_due(request, holidays=holidays, timers=timers)
    if the_kind in DIRECT_KINDS and the_state in ("damage_relief_applied", "extinction_notice"):
        raise ValueError(f"a {kind} case never enters {state}")
    if the_state == "damage_relief_applied":
        last = add_business_days(seoul_date(entered), timers.notice_business_days, holidays)
        return end_of_seoul_day(last)
    if the_state == "extinction_notice":
        return refund_decision_due(entered, timers=timers)
    return entered + timers.payout  # refund_decided


_RELIEF_DECISION: frozenset[State] = frozenset({"damage_relief_applied"})


def is_decision(kind: str, target: str) -> bool:
    """Whether entering ``target`` is the bank's decision on the report, for the decision SLA.

    On the damage-relief route the bank decides when it accepts the written application and
    asks the FSS for the notice (``damage_relief_applied``); the refund amount is the FSS's
    decision, months later. On the direct route the bank decides the refund itself."""
    decided: frozenset[State] = frozenset({"refund_decided", "closed", "rejected"})
    if _kind(kind) in RELIEF_KINDS:
        decided = decided | _RELIEF_DECISION
    return _state(target) in decided


def sla_status(
    received_at: datetime,
    first_action_at: datetime | None,
    decided_at: datetime | None,
    now: datetime,
    *,
    targets: Mapping[SlaName, timedelta] = SLA,
) -> list[SlaTimer]:
    """Each SLA's target, elapsed and remaining time (negative when breached) and status."""
    start = _utc(received_at, "received_at")
    current = _utc(now, "now")
    events: dict[SlaName, datetime | None] = {
        "first_action": None
        if first_action_at is None
        else _utc(first_action_at, "first_action_at"),
        "decision": None if decided_at is None else _utc(decided_at, "decided_at"),
    }
    timers: list[SlaTimer] = []
    for name, target in targets.items():
        event = events[name]
        elapsed = max((current if event is None else event) - start, timedelta())
        remaining = target - elapsed
        status: SlaStatus
        if remaining < timedelta():
            status = "breached"
        elif event is None:
            status = "running"
        else:
            status = "met"
        timers.append(SlaTimer(name, target, start + target, elapsed, remaining, status))
    return timers


# Below every timed open case, above every final one.
_UNTIMED = -sys.float_info.max


def urgency(kind: str, state: str, due_at: datetime | None, now: datetime) -> float:
    """A sort key for the analysts' queue, highest first: seconds past the due time (so
    overdue cases come first, by how overdue, then those with the least time left), open
    cases without a due time after those, final states last."""
    _kind(kind)
    if _state(state) in FINAL_STATES:
        return float("-inf")
    if due_at is None:
        return _UNTIMED
    return (_utc(now, "now") - _utc(due_at, "due_at")).total_seconds()
