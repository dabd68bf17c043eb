"""The damage-relief process: transitions, statutory deadlines, SLAs and queue order.

Expected tables and dates are written out here, not derived from the module under test."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from haetae.cases import process
from haetae.cases.process import (
    FINAL_STATES,
    KINDS,
    STATES,
    TRANSITIONS,
    Timers,
    TransitionNotAllowed,
    add_business_days,
    add_months,
    check_transition,
    due_at,
    refund_decision_due,
    rights_lapse_at,
    sla_status,
    urgency,
)

KST = timezone(timedelta(hours=9))
# Friday 20 November 2026, 22:00 in Seoul.
FRIDAY_EVENING = datetime(2026, 11, 20, 22, 0, tzinfo=KST)

RELIEF = {
    "received": {"protective_actions_taken", "rejected"},
    "protective_actions_taken": {"damage_relief_applied", "closed", "rejected"},
    "damage_relief_applied": {"extinction_notice", "closed", "rejected"},
    "extinction_notice": {"refund_decided", "closed", "rejected"},
    "refund_decided": {"closed", "rejected"},
    "closed": set(),
    "rejected": set(),
}
DIRECT = {
    "received": {"protective_actions_taken", "rejected"},
    "protective_actions_taken": {"refund_decided", "closed", "rejected"},
    "damage_relief_applied": set(),
    "extinction_notice": set(),
    "refund_decided": {"closed", "rejected"},
    "closed": set(),
    "rejected": set(),
}
EITHER = {
    **RELIEF,
    "protective_actions_taken": {"damage_relief_applied", "refund_decided", "closed", "rejected"},
}
EXPECTED = {
    "voice_phishing": RELIEF,
    "smishing": RELIEF,
    "messenger_impersonation": RELIEF,
    "account_takeover": EITHER,
    "card_fraud": DIRECT,
    "lost_card": DIRECT,
    "other": DIRECT,
}
ALLOWED = [
    (kind, current, target)
    for kind, table in EXPECTED.items()
    for current, targets in table.items()
    for target in sorted(targets)
]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- transitions --------------------------------------------------------------------------


def test_the_tables_are_the_documented_ones() -> None:
    assert set(KINDS) == set(EXPECTED)
    assert len(STATES) == 7
    for kind in KINDS:
        actual = {state: set(TRANSITIONS[kind][state]) for state in STATES}
        assert actual == EXPECTED[kind], kind


@pytest.mark.parametrize(("kind", "current", "target"), ALLOWED)
def test_every_allowed_transition_passes(kind: str, current: str, target: str) -> None:
    check_transition(kind, current, target)


@pytest.mark.parametrize(
    ("kind", "current", "target", "says"),
    [
        ("voice_phishing", "received", "damage_relief_applied", "cannot go from received"),
        ("voice_phishing", "protective_actions_taken", "refund_decided", "damage-relief route"),
        ("smishing", "damage_relief_applied", "refund_decided", "can go to: closed, extinction"),
        ("messenger_impersonation", "extinction_notice", "protective_actions_taken", "cannot"),
        ("voice_phishing", "refund_decided", "extinction_notice", "closed, rejected"),
        ("account_takeover", "received", "refund_decided", "damage-relief or direct"),
        ("card_fraud", "protective_actions_taken", "damage_relief_applied", "direct route"),
        ("lost_card", "received", "closed", "cannot go from received to closed"),
        ("other", "refund_decided", "protective_actions_taken", "cannot"),
        ("card_fraud", "damage_relief_applied", "extinction_notice", "never enters"),
        ("lost_card", "extinction_notice", "refund_decided", "never enters"),
        ("voice_phishing", "closed", "rejected", "final state"),
        ("card_fraud", "rejected", "received", "final state"),
        ("voice_phishing", "received", "received", "already received"),
        ("voice_phishing", "received", "approved", "unknown target state 'approved'"),
        ("voice_phishing", "open", "closed", "unknown current state 'open'"),
        ("romance_scam", "received", "rejected", "unknown report kind"),
    ],
)
def test_a_refused_move_says_why(kind: str, current: str, target: str, says: str) -> None:
    with pytest.raises(TransitionNotAllowed, match=says):
        check_transition(kind, current, target)
    assert issubclass(TransitionNotAllowed, ValueError)


@pytest.mark.parametrize("kind", KINDS)
def test_finals_are_final(kind: str) -> None:
    for final in ("closed", "rejected"):
        assert process.allowed_targets(kind, final) == frozenset()
        assert due_at(kind, final, FRIDAY_EVENING) is None
        assert urgency(kind, final, None, FRIDAY_EVENING) == float("-inf")
        for target in STATES:
            with pytest.raises(TransitionNotAllowed):
                check_transition(kind, final, target)
    assert frozenset({"closed", "rejected"}) == FINAL_STATES


def test_which_kinds_need_the_written_application_and_a_reason() -> None:
    assert [k for k in KINDS if process.application_needed(k)] == [
        "voice_phishing",
        "smishing",
        "messenger_impersonation",
        "account_takeover",
    ]
    assert process.needs_reason("rejected") and not process.needs_reason("closed")


def test_what_counts_as_the_banks_decision() -> None:
    assert process.is_decision("voice_phishing", "damage_relief_applied")
    assert not process.is_decision("voice_phishing", "protective_actions_taken")
    assert not process.is_decision("card_fraud", "protective_actions_taken")
    assert process.is_decision("card_fraud", "refund_decided")
    assert process.is_decision("lost_card", "closed")
    assert process.is_decision("smishing", "rejected")


# --- calendar -----------------------------------------------------------------------------


def test_business_days_skip_weekends_and_given_holidays() -> None:
    friday = date(2026, 11, 20)
    assert add_business_days(friday, 1) == date(2026, 11, 23)  # Monday
    assert add_business_days(friday, 3) == date(2026, 11, 25)  # Wednesday
    assert add_business_days(date(2026, 11, 21), 3) == date(2026, 11, 25)  # from Saturday
    christmas_eve = date(2026, 12, 24)  # a Thursday; 25 December is a Friday
    assert add_business_days(christmas_eve, 3) == date(2026, 12, 29)
    assert add_business_days(christmas_eve, 3, {date(2026, 12, 25)}) == date(2026, 12, 30)
    with pytest.raises(ValueError, match="at least 1"):
        add_business_days(friday, 0)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 10, 15), 2, date(2026, 12, 15)),
        (date(2026, 12, 31), 2, date(2027, 2, 28)),
        (date(2027, 12, 31), 2, date(2028, 2, 29)),  # leap year
        (date(2027, 1, 31), 2, date(2027, 3, 31)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
    ],
)
def test_months_end_on_the_same_day_or_the_last_of_the_month(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


# --- state timers -------------------------------------------------------------------------


def test_the_first_protective_action_is_due_thirty_minutes_after_the_report() -> None:
    assert due_at("voice_phishing", "received", FRIDAY_EVENING) == utc(2026, 11, 20, 13, 30)
    assert due_at("lost_card", "received", utc(2026, 11, 20, 13, 0)) == utc(2026, 11, 20, 13, 30)
    tighter = Timers(first_action=timedelta(minutes=10))
    assert due_at("smishing", "received", FRIDAY_EVENING, timers=tighter) == utc(
        2026, 11, 20, 13, 10
    )


def test_a_friday_evening_report_has_until_wednesday_for_the_written_application() -> None:
    due = due_at("voice_phishing", "protective_actions_taken", FRIDAY_EVENING)
    # The end of Wednesday 25 November in Seoul is 15:00 UTC that day.
    assert due == utc(2026, 11, 25, 15, 0)
    assert due is not None and due.tzinfo is UTC
    assert (due - timedelta(microseconds=1)).astimezone(KST).date() == date(2026, 11, 25)


def test_the_written_application_deadline_counts_seoul_days_and_holidays() -> None:
    # 08:30 Friday in Seoul is still Thursday in UTC: the Seoul date counts.
    friday_morning = datetime(2026, 11, 20, 8, 30, tzinfo=KST)
    assert due_at("smishing", "protective_actions_taken", friday_morning) == utc(
        2026, 11, 25, 15, 0
    )
    thursday_night = datetime(2026, 11, 19, 23, 30, tzinfo=KST)  # Fri, Mon, Tue
    assert due_at("smishing", "protective_actions_taken", thursday_night) == utc(
        2026, 11, 24, 15, 0
    )
    christmas_eve = datetime(2026, 12, 24, 10, 0, tzinfo=KST)
    assert due_at("voice_phishing", "protective_actions_taken", christmas_eve) == utc(
        2026, 12, 29, 15, 0
    )
    assert due_at(
        "voice_phishing",
        "protective_actions_taken",
        christmas_eve,
        holidays={date(2026, 12, 25)},
    ) == utc(2026, 12, 30, 15, 0)


def test_the_written_application_runs_from_the_request_not_from_the_action() -> None:
    requested = datetime(2026, 11, 19, 23, 50, tzinfo=KST)  # Thursday
    acted = datetime(2026, 11, 20, 0, 10, tzinfo=KST)  # Friday
    assert due_at("voice_phishing", "protective_actions_taken", acted) == utc(2026, 11, 25, 15)
    assert due_at(
        "voice_phishing", "protective_actions_taken", acted, requested_at=requested
    ) == utc(2026, 11, 24, 15)


def test_card_cases_wait_for_the_banks_own_decision_not_a_written_application() -> None:
    assert due_at("card_fraud", "protective_actions_taken", FRIDAY_EVENING) == utc(
        2026, 12, 5, 13, 0
    )
    with pytest.raises(ValueError, match="never enters"):
        due_at("card_fraud", "extinction_notice", FRIDAY_EVENING)


def test_the_fss_notice_is_due_two_business_days_after_the_application() -> None:
    assert due_at("voice_phishing", "damage_relief_applied", FRIDAY_EVENING) == utc(
        2026, 11, 24, 15, 0
    )


def test_the_extinction_period_crosses_the_month_ends() -> None:
    notice = datetime(2026, 12, 31, 9, 0, tzinfo=KST)
    # Rights lapse when 28 February 2027 ends in Seoul; the FSS decides within 14 days.
    assert rights_lapse_at(notice) == utc(2027, 2, 28, 15, 0)
    assert refund_decision_due(notice) == utc(2027, 3, 14, 15, 0)
    assert due_at("voice_phishing", "extinction_notice", notice) == utc(2027, 3, 14, 15, 0)
    # 31 December 16:00 UTC is already 1 January in Seoul: two months run to 1 March.
    assert rights_lapse_at(utc(2026, 12, 31, 16, 0)) == utc(2027, 3, 1, 15, 0)
    assert rights_lapse_at(datetime(2027, 12, 31, 12, 0, tzinfo=KST)) == utc(2028, 2, 29, 15, 0)
    assert rights_lapse_at(datetime(2026, 10, 15, 12, 0, tzinfo=KST)) == utc(2026, 12, 15, 15, 0)


def test_the_refund_is_due_three_days_after_the_decision() -> None:
    assert due_at("voice_phishing", "refund_decided", FRIDAY_EVENING) == utc(2026, 11, 23, 13, 0)
    assert due_at("card_fraud", "refund_decided", FRIDAY_EVENING) == utc(2026, 11, 23, 13, 0)


def test_naive_times_and_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at("voice_phishing", "received", datetime(2026, 11, 20, 22, 0))
    with pytest.raises(ValueError, match="unknown report kind"):
        due_at("romance_scam", "received", FRIDAY_EVENING)
    with pytest.raises(ValueError, match="unknown case state"):
        due_at("voice_phishing", "archived", FRIDAY_EVENING)


# --- SLA ----------------------------------------------------------------------------------

RECEIVED = utc(2026, 11, 20, 13, 0)


def by_name(timers: list[process.SlaTimer]) -> dict[str, process.SlaTimer]:
    return {timer.name: timer for timer in timers}


def test_an_action_within_thirty_minutes_meets_the_sla_and_the_decision_runs() -> None:
    timers = sla_status(RECEIVED, RECEIVED + timedelta(minutes=12), None, RECEIVED + timedelta(1))
    assert [t.name for t in timers] == ["first_action", "decision"]
    first, decision = by_name(timers)["first_action"], by_name(timers)["decision"]
    assert first.status == "met"
    assert first.elapsed == timedelta(minutes=12)
    assert first.remaining == timedelta(minutes=18)
    assert first.due_at == utc(2026, 11, 20, 13, 30)
    assert decision.status == "running"
    assert decision.elapsed == timedelta(days=1)
    assert decision.remaining == timedelta(days=14)


def test_a_late_action_breaches_and_the_remaining_time_goes_negative() -> None:
    late = sla_status(RECEIVED, RECEIVED + timedelta(minutes=45), None, RECEIVED + timedelta(2))
    assert by_name(late)["first_action"].status == "breached"
    assert by_name(late)["first_action"].remaining == timedelta(minutes=-15)
    # No action at all, two hours on: breached while still waiting.
    waiting = by_name(sla_status(RECEIVED, None, None, RECEIVED + timedelta(hours=2)))
    assert waiting["first_action"].status == "breached"
    assert waiting["first_action"].elapsed == timedelta(hours=2)
    assert waiting["first_action"].remaining == timedelta(minutes=-90)
    # Ten minutes on, nothing done yet: running.
    early = by_name(sla_status(RECEIVED, None, None, RECEIVED + timedelta(minutes=10)))
    assert early["first_action"].status == "running"
    assert early["first_action"].remaining == timedelta(minutes=20)


def test_the_decision_sla_is_met_on_the_fifteenth_day_and_breached_after() -> None:
    on_time = by_name(
        sla_status(RECEIVED, RECEIVED, RECEIVED + timedelta(days=15), RECEIVED + timedelta(30))
    )
    assert on_time["decision"].status == "met" and on_time["decision"].remaining == timedelta()
    late = by_name(
        sla_status(RECEIVED, RECEIVED, RECEIVED + timedelta(days=16), RECEIVED + timedelta(30))
    )
    assert late["decision"].status == "breached"
    assert late["decision"].elapsed == timedelta(days=16)
    assert late["decision"].remaining == timedelta(days=-1)


# --- queue order --------------------------------------------------------------------------


def test_the_queue_puts_overdue_cases_first_then_the_least_time_left_and_finals_last() -> None:
    now = utc(2026, 11, 23, 3, 0)
    cases = {
        "closed": ("voice_phishing", "closed", None),
        "ten_minutes_late": ("card_fraud", "received", now - timedelta(minutes=10)),
        "three_days_left": ("smishing", "protective_actions_taken", now + timedelta(days=3)),
        "untimed": ("other", "refund_decided", None),
        "two_hours_late": ("voice_phishing", "received", now - timedelta(hours=2)),
        "rejected": ("lost_card", "rejected", None),
        "five_minutes_left": ("lost_card", "received", now + timedelta(minutes=5)),
    }
    order = sorted(cases, key=lambda name: urgency(*cases[name], now), reverse=True)
    assert order[:5] == [
        "two_hours_late",
        "ten_minutes_late",
        "five_minutes_left",
        "three_days_left",
        "untimed",
    ]
    assert set(order[5:]) == {"closed", "rejected"}
    assert urgency(*cases["two_hours_late"], now) == 7200.0
    assert urgency(*cases["five_minutes_left"], now) == -300.0


def test_queue_order_from_real_timers_a_forgotten_report_beats_a_waiting_application() -> None:
    forgotten = due_at("voice_phishing", "received", RECEIVED)
    waiting = due_at("voice_phishing", "protective_actions_taken", RECEIVED)
    now = RECEIVED + timedelta(hours=2)
    assert urgency("voice_phishing", "received", forgotten, now) > urgency(
        "voice_phishing", "protective_actions_taken", waiting, now
    )
