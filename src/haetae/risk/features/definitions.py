"""The feature catalogue: every feature of the fraud engine, each defined once, as data.

The online stores (:mod:`.online`, :mod:`.redis_store`) and the batch computation
(:mod:`.offline`) interpret this catalogue; neither names a feature in its code.

Conventions every backend follows (and the parity test checks):

* A feature describes the event's *history*, meaning the events that came before it in the
  stream (sorted by ``occurred_at``; events at the same instant in their stream order),
  plus the event's own raw fields (``amount``, its time). The event never counts itself.
* A window of length ``w`` at time ``t`` holds the earlier events with
  ``t - w < occurred_at``: an event exactly one hour old is out of the one-hour window.
* A delayed window (``delay = d``) holds the events with
  ``t - d - w < occurred_at <= t - d``: their labels are assumed known ``d`` after the event,
  the handbook's assumption. Unlabelled events there count in counts but not in risk rates.
* A feature of an entity the event does not have (no card on a transfer) is null; an entity
  with no history gets count 0, sum 0, no mean (null), no rate (null), ``is_new`` true.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from haetae.risk.events import EVENT_KINDS, EventKind

Aggregation = Literal[
    "event",  # a field of the event itself: amount, hour_of_day, is_night, is_weekend
    "count",  # events in the window
    "sum",  # sum of ``column`` over the window
    "mean",  # sum / count of ``column``; null when the window is empty
    "rate",  # share of events with ``column == value`` among those where it is known
    "distinct",  # distinct non-null values of ``column``
    "is_new",  # no earlier event of the entity at all (all history)
    "hours_since",  # hours since the entity's last event of ``kinds``; null when none
    "ratio",  # the event's ``column`` / feature ``over``; null when that is null or 0
]
FeatureType = Literal["number", "bool"]
EventField = Literal["amount", "hour_of_day", "is_night", "is_weekend"]

ENTITIES: dict[str, tuple[str, ...]] = {
    "customer": ("customer_id",),
    "card": ("card_id",),
    "device": ("device_id",),
    "ip": ("ip",),
    "terminal": ("terminal_id",),
    "payee": ("payee_bank", "payee_account"),
    "customer_payee": ("customer_id", "payee_bank", "payee_account"),
    "customer_device": ("customer_id", "device_id"),
}
"""Entity name -> the event columns that identify it (all must be present)."""

ALL_KINDS: frozenset[EventKind] = frozenset(EVENT_KINDS)
MONEY: frozenset[EventKind] = frozenset({"payment", "transfer"})
PAYMENT: frozenset[EventKind] = frozenset({"payment"})
TRANSFER: frozenset[EventKind] = frozenset({"transfer"})

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WINDOWS: dict[str, timedelta] = {"1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
LABEL_DELAY = 7 * DAY  # the handbook's delay before a fraud label is known

# Local time for the calendar features: Korea (UTC+9, no daylight saving since 1988) for
# KRW, UTC for everything else (the handbook's simulated clock is a plain UTC clock).
LOCAL_UTC_OFFSET: dict[str, timedelta] = {"KRW": timedelta(hours=9)}
NIGHT_LAST_HOUR = 6  # night is 00:00-06:59 local, the handbook's ``hour <= 6``
WEEKEND_DAYS = (5, 6)  # Saturday, Sunday (Monday = 0)

_BOOL_AGGREGATIONS = frozenset({"is_new"})
_BOOL_EVENT_FIELDS = frozenset({"is_night", "is_weekend"})


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    agg: Aggregation
    entity: str | None = None
    kinds: frozenset[EventKind] = ALL_KINDS
    window: timedelta | None = None  # None: all history
    delay: timedelta = timedelta(0)
    column: str | None = None
    value: bool | int | None = None
    over: str | None = None
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        needs_entity = self.agg not in ("event", "ratio")
        if needs_entity != (self.entity is not None):
            raise ValueError(f"{self.name}: entity is required exactly for history features")
        if self.entity is not None and self.entity not in ENTITIES:
            raise ValueError(f"{self.name}: unknown entity {self.entity!r}")
        if self.agg in ("sum", "mean", "rate", "distinct", "ratio", "event") and not self.column:
            raise ValueError(f"{self.name}: {self.agg} needs a column")
        if self.agg == "rate" and self.value is None:
            raise ValueError(f"{self.name}: rate needs the value it counts")
        if self.agg == "ratio" and not self.over:
            raise ValueError(f"{self.name}: ratio needs the feature it divides by")
        if self.agg in ("is_new", "hours_since") and self.window is not None:
            raise ValueError(f"{self.name}: {self.agg} looks at all history")
        if self.delay and self.agg in ("distinct", "is_new", "hours_since"):
            raise ValueError(f"{self.name}: {self.agg} cannot be delayed")
        if self.delay and self.window is None:
            raise ValueError(f"{self.name}: a delayed feature needs a window")

    @property
    def type(self) -> FeatureType:
        if self.agg in _BOOL_AGGREGATIONS:
            return "bool"
        if self.agg == "event" and self.column in _BOOL_EVENT_FIELDS:
            return "bool"
        return "number"


def _catalogue() -> tuple[Feature, ...]:
    f: list[Feature] = [
        Feature(
            "amount",
            "event",
            column="amount",
            note="The event's amount in minor units of its currency (0 when it moves no money)",
        ),
        Feature(
            "hour_of_day",
            "event",
            column="hour_of_day",
            note="The event's local hour, 0-23 (Korea, UTC+9, for KRW; UTC otherwise)",
        ),
        Feature(
            "is_night",
            "event",
            column="is_night",
            note="The event's local time is 00:00-06:59 (the handbook's night: hour <= 6)",
        ),
        Feature(
            "is_weekend",
            "event",
            column="is_weekend",
            note="The event's local day is a Saturday or a Sunday",
        ),
    ]
    for label, w in WINDOWS.items():
        f += [
            Feature(f"customer.count_{label}", "count", "customer", MONEY, w),
            Feature(f"customer.sum_amount_{label}", "sum", "customer", MONEY, w, column="amount"),
            Feature(f"customer.avg_amount_{label}", "mean", "customer", MONEY, w, column="amount"),
        ]
    for label in ("7d", "30d"):
        f.append(
            Feature(
                f"customer.amount_ratio_{label}",
                "ratio",
                kinds=MONEY,
                column="amount",
                over=f"customer.avg_amount_{label}",
            )
        )
    f += [
        Feature("customer.transfer_count_24h", "count", "customer", TRANSFER, DAY),
        Feature("customer.transfer_sum_24h", "sum", "customer", TRANSFER, DAY, column="amount"),
        Feature("customer.login_count_1h", "count", "customer", frozenset({"login"}), HOUR),
        Feature(
            "customer.decline_rate_24h",
            "rate",
            "customer",
            PAYMENT,
            DAY,
            column="approved",
            value=False,
        ),
        Feature(
            "hours_since_cert_reissue",
            "hours_since",
            "customer",
            frozenset({"certificate_reissue"}),
        ),
        Feature(
            "hours_since_password_reset",
            "hours_since",
            "customer",
            frozenset({"password_reset"}),
        ),
        Feature(
            "hours_since_payee_added",
            "hours_since",
            "customer",
            frozenset({"payee_added"}),
            note="of any payee",
        ),
        Feature("card.count_1h", "count", "card", PAYMENT, HOUR),
        Feature("card.count_24h", "count", "card", PAYMENT, DAY),
        Feature("card.sum_amount_24h", "sum", "card", PAYMENT, DAY, column="amount"),
        Feature(
            "card.decline_rate_24h",
            "rate",
            "card",
            PAYMENT,
            DAY,
            column="approved",
            value=False,
        ),
        Feature("device.count_1h", "count", "device", ALL_KINDS, HOUR),
        Feature("device.distinct_cards_24h", "distinct", "device", PAYMENT, DAY, column="card_id"),
        Feature(
            "device.distinct_customers_24h",
            "distinct",
            "device",
            ALL_KINDS,
            DAY,
            column="customer_id",
        ),
        Feature(
            "device.decline_rate_1h",
            "rate",
            "device",
            PAYMENT,
            HOUR,
            column="approved",
            value=False,
        ),
        Feature(
            "device.is_new",
            "is_new",
            "customer_device",
            ALL_KINDS,
        ),
        Feature("ip.count_1h", "count", "ip", ALL_KINDS, HOUR),
        Feature(
            "ip.distinct_customers_24h", "distinct", "ip", ALL_KINDS, DAY, column="customer_id"
        ),
    ]
    for label in ("1h", "24h", "7d"):
        f.append(Feature(f"terminal.count_{label}", "count", "terminal", PAYMENT, WINDOWS[label]))
    for label in ("24h", "7d", "30d"):
        w = WINDOWS[label]
        f += [
            Feature(
                f"terminal.delayed_count_{label}",
                "count",
                "terminal",
                PAYMENT,
                w,
                LABEL_DELAY,
                note="the handbook's terminal count",
            ),
            Feature(
                f"terminal.risk_{label}",
                "rate",
                "terminal",
                PAYMENT,
                w,
                LABEL_DELAY,
                column="label",
                value=1,
                note="the handbook's terminal risk (fraud labels known after the delay)",
            ),
        ]
    f += [
        Feature(
            "payee.is_new",
            "is_new",
            "customer_payee",
            frozenset({"transfer", "payee_added"}),
            note="the customer never sent to nor registered this payee",
        ),
        Feature("payee.inbound_count_24h", "count", "payee", TRANSFER, DAY),
        Feature("payee.inbound_sum_24h", "sum", "payee", TRANSFER, DAY, column="amount"),
    ]
    for label in ("24h", "7d"):
        f.append(
            Feature(
                f"payee.inbound_distinct_senders_{label}",
                "distinct",
                "payee",
                TRANSFER,
                WINDOWS[label],
                column="customer_id",
                note="mule signal: many customers paying one account",
            )
        )
    return tuple(f)


FEATURES: tuple[Feature, ...] = _catalogue()
FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in FEATURES)
FEATURES_BY_NAME: dict[str, Feature] = {feature.name: feature for feature in FEATURES}


def feature_types() -> dict[str, FeatureType]:
    """Feature name -> "number" or "bool" (what the rules language checks names against)."""
    return {feature.name: feature.type for feature in FEATURES}


def _check(features: tuple[Feature, ...]) -> None:
    names = [feature.name for feature in features]
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    for feature in features:
        if feature.over is not None and feature.over not in names:
            raise ValueError(f"{feature.name}: unknown feature {feature.over!r}")


_check(FEATURES)
