"""What specific features mean, on small hand-made histories, online and offline alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from haetae.risk.events import EVENT_SCHEMA, RiskEvent
from haetae.risk.features import (
    FEATURE_NAMES,
    FEATURES_BY_NAME,
    Feature,
    InProcessFeatureStore,
    OfflineFeatures,
    compute,
    feature_types,
)
from haetae.risk.features.definitions import DAY, HOUR
from haetae.risk.features.reference import markdown_table
from tests.unit.test_features_parity import assert_parity

T0 = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # a Wednesday, 12:00 in Seoul
DOCS = Path(__file__).resolve().parents[2] / "docs" / "features.md"


def event(kind: str, at: timedelta = timedelta(0), **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(EVENT_SCHEMA)
    row.update(
        event_id=uuid.uuid4().hex,
        kind=kind,
        occurred_at=T0 + at,
        customer_id="c1",
        amount=0,
        currency="KRW",
    )
    row.update(fields)
    return row


def pay(at: timedelta = timedelta(0), **fields: Any) -> dict[str, Any]:
    fields = {"card_id": "k1", "terminal_id": "t1", "amount": 10_000, "approved": True} | fields
    return event("payment", at, **fields)


def history(*rows: dict[str, Any]) -> list[dict[str, Any]]:
    """Each event's features, computed online; offline must agree on every one of them."""
    frame = pl.DataFrame(list(rows), schema=EVENT_SCHEMA, orient="row")
    assert frame.get_column("occurred_at").is_sorted(), "give the events in time order"
    store = InProcessFeatureStore()
    online = [store.process(row) for row in frame.iter_rows(named=True)]
    assert_parity(online, compute(frame))
    return online


M = timedelta(minutes=1)
US = timedelta(microseconds=1)


def test_decline_rate_counts_answered_payments_of_the_device_in_the_last_hour() -> None:
    values = history(
        pay(0 * M, device_id="d1", approved=True),
        pay(1 * M, device_id="d1", approved=False),
        pay(2 * M, device_id="d1", approved=None),  # no answer yet: left out
        pay(3 * M, device_id="d1", approved=False),
        pay(61 * M, device_id="d1"),  # the first payment is out of the hour
    )
    assert values[0]["device.decline_rate_1h"] is None  # nothing answered before
    assert values[1]["device.decline_rate_1h"] == 0.0
    assert values[3]["device.decline_rate_1h"] == pytest.approx(1 / 2)
    assert values[4]["device.decline_rate_1h"] == pytest.approx(2 / 2)


def test_distinct_cards_per_device_over_a_day() -> None:
    values = history(
        pay(0 * M, device_id="d1", card_id="k1"),
        pay(1 * M, device_id="d1", card_id="k2"),
        pay(2 * M, device_id="d1", card_id="k1"),
        pay(3 * M, device_id="d1", card_id="k3", customer_id="c2"),
        event("login", 4 * M, device_id="d1"),
        pay(DAY + 1 * M, device_id="d1", card_id="k9"),  # k2 left exactly now
        pay(DAY + 2 * M, device_id="d2", card_id="k1"),
    )
    assert [v["device.distinct_cards_24h"] for v in values] == [0, 1, 2, 2, 3, 2, 0]
    assert values[4]["device.distinct_customers_24h"] == 2


def test_a_payee_is_new_until_the_customer_registers_or_pays_it() -> None:
    payee = {"payee_bank": "004", "payee_account": "123-456789"}
    values = history(
        event("transfer", 0 * M, amount=50_000, **payee),
        event("transfer", 1 * M, amount=50_000, **payee),
        event("payee_added", 2 * M, customer_id="c2", **payee),
        event("transfer", 3 * M, customer_id="c2", amount=900_000, **payee),
        event("transfer", 4 * M, customer_id="c3", amount=900_000, **payee),
        event("login", 5 * M),
    )
    assert [v["payee.is_new"] for v in values] == [True, False, True, False, True, None]
    # the account receives from two, then three customers: the mule signal
    assert values[4]["payee.inbound_distinct_senders_24h"] == 2
    assert values[4]["payee.inbound_count_24h"] == 3
    assert values[4]["payee.inbound_sum_24h"] == 1_000_000


def test_hours_since_the_last_certificate_reissue() -> None:
    values = history(
        event("login", 0 * M),
        event("certificate_reissue", 10 * M),
        event("transfer", 100 * M, amount=3_000_000, payee_bank="004", payee_account="99-1"),
        event("certificate_reissue", 130 * M),
        event("login", 130 * M),
        event("login", 131 * M, customer_id="c2"),
    )
    hours = [v["hours_since_cert_reissue"] for v in values]
    assert hours[:2] == [None, None]  # never reissued before these events
    assert hours[2] == pytest.approx(1.5)
    assert hours[3] == pytest.approx(2.0)  # the reissue itself sees the previous one
    assert hours[4] == 0.0
    assert hours[5] is None  # another customer


def test_an_event_exactly_one_window_old_is_out_of_it() -> None:
    values = history(
        pay(timedelta(0)),
        pay(HOUR - US, card_id="k2"),
        pay(HOUR),
        pay(HOUR + US),
    )
    assert [v["customer.count_1h"] for v in values] == [0, 1, 1, 2]
    assert [v["customer.count_24h"] for v in values] == [0, 1, 2, 3]
    assert [v["card.count_1h"] for v in values] == [0, 0, 0, 1]


def test_events_at_the_same_instant_see_those_before_them_in_the_stream() -> None:
    values = history(pay(timedelta(0), amount=1_000), pay(timedelta(0), amount=3_000))
    assert values[0]["customer.count_1h"] == 0
    assert values[1]["customer.count_1h"] == 1
    assert values[1]["customer.avg_amount_1h"] == 1_000.0


def test_terminal_risk_uses_only_labels_past_the_seven_day_delay() -> None:
    week = 7 * DAY
    values = history(
        pay(timedelta(0), label=1, customer_id="a"),
        pay(HOUR, label=0, customer_id="b"),
        pay(2 * HOUR, label=None, customer_id="c"),  # never labelled: not in the rate
        pay(week - US, customer_id="d"),
        pay(week, customer_id="e"),
        pay(week + HOUR, customer_id="f"),
        pay(week + 2 * HOUR, customer_id="g"),
        pay(week + DAY, customer_id="h"),
        pay(week + DAY + 2 * HOUR, customer_id="i"),
    )
    risk = [v["terminal.risk_24h"] for v in values]
    delayed = [v["terminal.delayed_count_24h"] for v in values]
    assert delayed == [0, 0, 0, 0, 1, 2, 3, 2, 0]
    assert risk[:4] == [None] * 4
    assert risk[4:7] == [1.0, 0.5, 0.5]
    assert risk[7] == 0.0  # the fraud left the 24 h window, the genuine one is still in
    assert risk[8] is None
    assert values[4]["terminal.count_7d"] == 3  # the undelayed count is plain velocity


def test_a_label_learnt_late_counts_once_its_delay_has_passed() -> None:
    store = InProcessFeatureStore()
    fraud = pay(timedelta(0), customer_id="a")
    store.process(fraud)
    store.process(pay(HOUR, customer_id="b", label=0))
    before = store.features(pay(7 * DAY + 2 * HOUR, customer_id="x"))
    assert before["terminal.risk_24h"] == 0.0  # the first payment matured unlabelled
    store.record_label(fraud, 1)  # a chargeback, after the delay
    after = store.features(pay(7 * DAY + 2 * HOUR, customer_id="x"))
    assert after["terminal.risk_24h"] == 0.5
    assert after["terminal.delayed_count_24h"] == 2


def test_a_label_learnt_before_the_delay_is_used_when_the_event_matures() -> None:
    store = InProcessFeatureStore()
    fraud = pay(timedelta(0), customer_id="a")
    store.process(fraud)
    store.record_label(fraud, 1)
    assert store.features(pay(DAY))["terminal.risk_24h"] is None
    assert store.features(pay(7 * DAY))["terminal.risk_24h"] == 1.0


def test_amount_ratio_to_the_customers_usual_amount() -> None:
    values = history(
        pay(0 * M, amount=1_000),
        pay(1 * M, amount=3_000),
        pay(2 * M, amount=8_000),
        event("login", 3 * M),
        pay(4 * M, amount=0),
    )
    assert values[0]["customer.amount_ratio_30d"] is None  # no usual amount yet
    assert values[2]["customer.avg_amount_30d"] == 2_000.0
    assert values[2]["customer.amount_ratio_30d"] == 4.0
    assert values[3]["customer.amount_ratio_30d"] is None  # a login moves no money
    assert values[4]["customer.amount_ratio_30d"] == 0.0


def test_velocity_counts_by_kind() -> None:
    transfer = {"payee_bank": "004", "payee_account": "55-5", "amount": 700_000}
    values = history(
        event("login", 0 * M, device_id="d1", ip="1.2.3.4"),
        event("login", 1 * M, device_id="d1", ip="1.2.3.4"),
        event("transfer", 2 * M, device_id="d1", ip="1.2.3.4", **transfer),
        event("transfer", 3 * M, device_id="d2", ip="1.2.3.4", **transfer),
        pay(4 * M, device_id="d2", ip="5.6.7.8"),
    )
    last = values[-1]
    assert last["customer.login_count_1h"] == 2
    assert last["customer.transfer_count_24h"] == 2
    assert last["customer.transfer_sum_24h"] == 1_400_000
    assert last["customer.count_1h"] == 2  # payments and transfers
    assert last["device.count_1h"] == 1
    assert last["device.is_new"] is False
    assert values[3]["device.is_new"] is True
    assert values[3]["ip.count_1h"] == 3
    assert last["ip.count_1h"] == 0
    assert values[3]["ip.distinct_customers_24h"] == 1


def test_local_time_is_seoul_for_won_and_utc_otherwise() -> None:
    saturday_0630_seoul = datetime(2026, 3, 6, 21, 30, tzinfo=UTC)
    at = saturday_0630_seoul - T0
    values = history(pay(at), pay(at, currency="USD"))
    assert values[0]["hour_of_day"] == 6
    assert values[0]["is_night"] is True
    assert values[0]["is_weekend"] is True
    assert values[1]["hour_of_day"] == 21
    assert values[1]["is_night"] is False
    assert values[1]["is_weekend"] is False


def test_features_of_an_entity_the_event_lacks_are_null() -> None:
    (values,) = history(event("login"))
    assert values["card.count_1h"] is None
    assert values["terminal.risk_7d"] is None
    assert values["payee.is_new"] is None
    assert values["device.is_new"] is None
    assert values["customer.count_1h"] == 0
    assert values["customer.avg_amount_30d"] is None


def test_a_risk_event_row_is_a_valid_input() -> None:
    risk_event = RiskEvent.model_validate(
        {
            "kind": "transfer",
            "customer_id": "c1",
            "occurred_at": "2026-03-04T12:00:00+09:00",
            "amount": 1_000_000,
            "payee": {"bank_code": "004", "account_number": "123-456789"},
            "device": {"id": "d1", "ip": "10.1.1.1"},
        }
    )
    values = InProcessFeatureStore().process(risk_event.row())
    assert values["payee.is_new"] is True
    assert values["hour_of_day"] == 12


def test_a_late_event_is_counted_and_leaves_behind_the_one_ahead_of_it() -> None:
    store = InProcessFeatureStore()
    store.process(pay(2 * HOUR))
    store.process(pay(HOUR))  # arrives after a later one: history of what follows
    assert store.features(pay(2 * HOUR + M))["customer.count_24h"] == 2
    # queued behind the 2 h payment, it leaves the hour when that one does
    assert store.features(pay(2 * HOUR + M))["customer.count_1h"] == 2
    assert store.features(pay(3 * HOUR))["customer.count_1h"] == 0


def test_sweep_forgets_idle_keys_without_changing_values() -> None:
    store = InProcessFeatureStore()
    for i in range(5):
        store.process(pay(i * M, card_id=f"k{i}", ip=f"10.0.0.{i}"))
    forgotten = store.sweep(T0 + 40 * DAY)
    assert forgotten >= 10  # cards, IPs...
    later = store.features(pay(40 * DAY, card_id="k0", ip="10.0.0.0"))
    assert later["card.count_24h"] == 0
    assert later["customer.count_30d"] == 0
    assert later["device.is_new"] is None


def test_a_store_computes_only_the_features_it_is_given() -> None:
    chosen = tuple(FEATURES_BY_NAME[name] for name in ("amount", "card.count_1h", "is_night"))
    store = InProcessFeatureStore(chosen)
    store.process(pay())
    values = store.process(pay(M))
    assert values == {"amount": 10_000, "card.count_1h": 1, "is_night": False}
    assert set(compute(pl.DataFrame([pay()], schema=EVENT_SCHEMA), chosen).columns) >= {
        "card.count_1h"
    }


def test_the_catalogue_names_and_types() -> None:
    types = feature_types()
    assert list(types) == list(FEATURE_NAMES)
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES))
    assert {name for name, kind in types.items() if kind == "bool"} == {
        "is_night",
        "is_weekend",
        "device.is_new",
        "payee.is_new",
    }
    handbook = [
        "amount",
        "is_weekend",
        "is_night",
        *(f"customer.{a}_{w}" for a in ("count", "avg_amount") for w in ("24h", "7d", "30d")),
        *(f"terminal.{a}_{w}" for a in ("delayed_count", "risk") for w in ("24h", "7d", "30d")),
    ]
    assert set(handbook) <= set(FEATURE_NAMES)


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "x", "agg": "count"},  # no entity
        {"name": "x", "agg": "count", "entity": "nobody"},
        {"name": "x", "agg": "mean", "entity": "customer"},  # no column
        {"name": "x", "agg": "rate", "entity": "customer", "column": "label"},  # no value
        {"name": "x", "agg": "distinct", "entity": "device", "column": "card_id", "delay": DAY},
        {"name": "x", "agg": "is_new", "entity": "customer", "window": DAY},
        {"name": "x", "agg": "count", "entity": "customer", "delay": DAY},  # all history
    ],
)
def test_a_malformed_feature_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="x"):
        Feature(**bad)


def test_the_reference_documents_every_feature_as_the_catalogue_defines_it() -> None:
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("<!-- features:start -->\n")[1].split("<!-- features:end -->")[0]
    assert table == markdown_table(), "regenerate: python -m haetae.risk.features.reference"
    assert all(f"`{name}`" in table for name in FEATURE_NAMES)


def test_offline_accepts_a_history_without_labels_or_some_columns() -> None:
    frame = pl.DataFrame([pay(), pay(M)], schema=EVENT_SCHEMA).drop("label", "scenario", "ip")
    out = compute(frame)
    assert out.get_column("card.count_1h").to_list() == [0, 1]
    assert out.get_column("terminal.risk_7d").to_list() == [None, None]
    assert compute(frame.clear()).height == 0


def test_the_offline_builder_names_its_columns() -> None:
    builder = OfflineFeatures()
    assert builder.names == FEATURE_NAMES
    frame = pl.DataFrame([pay()], schema=EVENT_SCHEMA)
    assert set(builder.names) <= set(builder.compute(frame).columns)
