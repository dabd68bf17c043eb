"""Every feature, replayed online event by event, equals its offline (batch) value.

The stream is simulated here so the test does not depend on the simulator: customers with
their cards, devices and IPs, terminals, payees (a few of them mule accounts many customers
pay), logins, certificate reissues, password resets and payee registrations over seven
weeks, so that 30-day windows and the 7-day label delay both fill and empty. Times are on a
coarse grid (many events share an instant) and copies of events are placed exactly one
window (or delay, or delay + window) later, so every boundary is crossed exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from haetae.risk.events import EVENT_SCHEMA
from haetae.risk.features import (
    FEATURE_NAMES,
    InProcessFeatureStore,
    compute,
    feature_types,
)
from haetae.risk.features.online import FeatureStore

START = datetime(2026, 3, 1, tzinfo=UTC)
KIND_WEIGHTS = {
    "payment": 55,
    "transfer": 20,
    "login": 14,
    "payee_added": 4,
    "certificate_reissue": 4,
    "password_reset": 3,
}
BOUNDARIES = [
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=8),  # the 7-day delay + the 24 h window
    timedelta(days=14),
    timedelta(days=30),
    timedelta(days=37),
    timedelta(seconds=1),
    timedelta(0),
]


def simulated_stream(seed: int, size: int, days: int = 50) -> pl.DataFrame:
    rng = random.Random(seed)
    customers = [f"c{i:03d}" for i in range(max(8, size // 60))]
    terminals = [f"t{i:03d}" for i in range(max(4, size // 150))]
    mules = [("088", f"110-{i:06d}") for i in range(3)]
    farm_devices = ["dev-farm-1", "dev-farm-2"]
    profile: dict[str, dict[str, Any]] = {}
    for c in customers:
        profile[c] = {
            "cards": [f"card-{c}-{j}" for j in range(rng.randint(1, 3))],
            "devices": [f"dev-{c}-{j}" for j in range(rng.randint(1, 2))],
            "ips": [f"10.0.{rng.randint(0, 40)}.{rng.randint(1, 9)}" for _ in range(2)],
            "payees": [("004", f"{rng.randint(0, 999999):06d}") for _ in range(3)],
            "mean": rng.randint(5, 300) * 100,
            "currency": "KRW" if rng.random() < 0.7 else "USD",
        }
    kinds = list(KIND_WEIGHTS)
    weights = list(KIND_WEIGHTS.values())
    rows: list[dict[str, Any]] = []
    for i in range(size):
        c = rng.choice(customers)
        p = profile[c]
        kind = rng.choices(kinds, weights)[0]
        # a grid of 10 minutes over the period: plenty of events share an instant
        at = START + timedelta(minutes=10 * rng.randrange(days * 144))
        row: dict[str, Any] = {name: None for name in EVENT_SCHEMA}
        row.update(
            event_id=f"e{seed}-{i}",
            kind=kind,
            occurred_at=at,
            customer_id=c,
            amount=0,
            currency=p["currency"],
        )
        fraudulent = rng.random() < 0.06
        if rng.random() < 0.9:
            row["device_id"] = rng.choice(farm_devices if fraudulent else p["devices"])
        if rng.random() < 0.85:
            row["ip"] = rng.choice(p["ips"])
        if kind == "payment":
            row.update(
                card_id=rng.choice(p["cards"]),
                terminal_id=rng.choice(terminals),
                amount=max(100, int(rng.gauss(p["mean"], p["mean"] / 2))),
                approved=rng.choices([True, False, None], [85, 11, 4])[0],
                label=rng.choices([0, 1, None], [88, 7, 5])[0],
            )
        elif kind in ("transfer", "payee_added"):
            bank, account = rng.choice(mules if fraudulent else p["payees"])
            row.update(payee_bank=bank, payee_account=account)
            if kind == "transfer":
                row["amount"] = rng.randint(1, 500) * 1000
                row["label"] = int(fraudulent)
        rows.append(row)
    # exact boundaries: the same entities again exactly one window (or delay) later
    for n in range(size // 8):
        original = rng.choice(rows)
        copy = {**original, "event_id": f"b{seed}-{n}"}
        copy["occurred_at"] = original["occurred_at"] + rng.choice(BOUNDARIES)
        if rng.random() < 0.3:  # the same place, another kind of event
            copy["kind"] = rng.choice(kinds)
        rows.append(copy)
    rng.shuffle(rows)  # ties are then in no particular order, as in a real stream
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")


def replay(store: FeatureStore, events: pl.DataFrame) -> Iterator[dict[str, Any]]:
    for row in events.iter_rows(named=True):
        yield store.process(row)


def _same(expected: Any, got: Any, kind: str) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    if kind == "bool":
        return isinstance(got, bool) and got == expected
    if isinstance(expected, float) or isinstance(got, float):
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-9)
    return isinstance(got, int) and got == expected


def assert_parity(online: list[dict[str, Any]], offline: pl.DataFrame) -> None:
    types = feature_types()
    assert len(online) == offline.height
    for name in FEATURE_NAMES:
        column = offline.get_column(name).to_list()
        wrong = [
            (i, column[i], values[name])
            for i, values in enumerate(online)
            if not _same(column[i], values[name], types[name])
        ]
        assert not wrong, (
            f"{name}: {len(wrong)} events differ, first (row, offline, online): {wrong[:3]}"
        )


@pytest.fixture(scope="module")
def stream() -> pl.DataFrame:
    # sorted once, ties in shuffled order: the order both sides treat as the stream's
    return simulated_stream(seed=7, size=6_000).sort("occurred_at", maintain_order=True)


@pytest.fixture(scope="module")
def offline(stream: pl.DataFrame) -> pl.DataFrame:
    return compute(stream)


@pytest.fixture(scope="module")
def online(stream: pl.DataFrame) -> list[dict[str, Any]]:
    return list(replay(InProcessFeatureStore(), stream))


def test_every_feature_online_equals_offline(
    online: list[dict[str, Any]], offline: pl.DataFrame
) -> None:
    assert set(online[0]) == set(FEATURE_NAMES)
    assert_parity(online, offline)


def test_offline_keeps_the_stream_order_and_adds_one_column_per_feature(
    stream: pl.DataFrame, offline: pl.DataFrame
) -> None:
    assert offline.get_column("event_id").to_list() == stream.get_column("event_id").to_list()
    assert set(offline.columns) == set(stream.columns) | set(FEATURE_NAMES)


def test_the_stream_exercises_every_feature(offline: pl.DataFrame) -> None:
    """Guard against a parity that holds only because a feature is always null or zero."""
    for name in FEATURE_NAMES:
        values = offline.get_column(name).drop_nulls()
        assert values.n_unique() > 1, f"{name} takes a single value: {values.unique().to_list()}"


def test_the_stream_has_ties_and_exact_boundaries(stream: pl.DataFrame) -> None:
    """Same-instant events and events exactly a window (or the delay) apart, per entity."""
    for entity, gaps in {
        "customer_id": [timedelta(0), timedelta(hours=1), timedelta(days=1), timedelta(days=30)],
        "terminal_id": [timedelta(0), timedelta(days=7), timedelta(days=8), timedelta(days=37)],
        "device_id": [timedelta(0), timedelta(hours=1), timedelta(days=1)],
    }.items():
        pairs = (
            stream.select(entity, "occurred_at")
            .drop_nulls()
            .join(stream.select(entity, later="occurred_at"), on=entity)
        )
        found = set(pairs.select(pl.col("later") - pl.col("occurred_at")).to_series().to_list())
        assert set(gaps) <= found, (entity, set(gaps) - found)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parity_on_other_streams(seed: int) -> None:
    events = simulated_stream(seed=seed, size=1_500, days=45)
    events = events.sort("occurred_at", maintain_order=True)
    assert_parity(list(replay(InProcessFeatureStore(), events)), compute(events))


def test_offline_sorts_unsorted_input_like_the_replay() -> None:
    events = simulated_stream(seed=11, size=800)
    ordered = events.sort("occurred_at", maintain_order=True)
    assert_parity(list(replay(InProcessFeatureStore(), ordered)), compute(events))
