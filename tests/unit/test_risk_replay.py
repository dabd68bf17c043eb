"""A replay decides every event as the online engine does, event by event."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from haetae.cli import app
from haetae.demo import DEMO_RULES
from haetae.risk.events import EVENT_SCHEMA, RiskEvent
from haetae.risk.features import FEATURE_NAMES
from haetae.risk.features.offline import OfflineFeatures
from haetae.risk.model import protocol, registry
from haetae.risk.model.scorer import Scorer
from haetae.risk.model.train import FraudModel, TrainParams, fit
from haetae.risk.replay import replay
from haetae.services import Services
from haetae.simulate.run import Profile, simulate

EXTRA_RULES = (
    # a score rule low enough to hit often, an event name read from its own column, a list
    ("scored", "review if score >= 20", None),
    ("watched-device", "challenge if device.id in @watched", None),
    ("large-payment", "block if amount >= 1_500_000 and kind == 'payment'", None),
)


@pytest.fixture(scope="module")
def stream() -> pl.DataFrame:
    return simulate(Profile.KOREAN, seed=11, customers=400, days=8)


@pytest.fixture(scope="module")
def model(stream: pl.DataFrame) -> FraudModel:
    """A model of made-up labels (large amounts and a random few): parity needs a model
    with varied scores and reasons, not a good one; the small stream has no fraud."""
    featured = protocol.with_keys(OfflineFeatures().compute(stream))
    noise = pl.Series(np.random.default_rng(3).random(featured.height) < 0.05)
    labelled = featured.with_columns(
        label=((pl.col("amount") > pl.col("amount").quantile(0.9)) | noise).cast(pl.Int8)
    )
    params = TrainParams(num_threads=1, max_rounds=40, min_data_in_leaf=20)
    return fit(labelled, FEATURE_NAMES, params)


def _event(row: dict[str, Any]) -> RiskEvent:
    body: dict[str, Any] = {
        key: row[key]
        for key in ("kind", "customer_id", "occurred_at", "event_id", "amount", "currency")
    }
    body |= {k: row[k] for k in ("card_id", "terminal_id", "approved") if row[k] is not None}
    if row["payee_bank"] is not None:
        body["payee"] = {"bank_code": row["payee_bank"], "account_number": row["payee_account"]}
    if row["device_id"] is not None:
        body["device"] = {"id": row["device_id"], "ip": row["ip"]}
    return RiskEvent.model_validate(body)


async def test_a_replay_decides_as_the_online_engine(
    services: Services, stream: pl.DataFrame, model: FraudModel
) -> None:
    scorer = Scorer(model)
    services.risk.scorer = scorer
    events = [_event(row) for row in stream.head(3_000).iter_rows(named=True)]
    watched = sorted({e.device.id for e in events[::40] if e.device})
    await services.rules.put_list("watched", watched)
    for name, text, kinds in (*DEMO_RULES, *EXTRA_RULES):
        await services.rules.save(name, text, author="test", kinds=list(kinds) if kinds else None)

    online = {}
    for event in events:
        assessment = await services.risk.evaluate(event)
        online[event.event_id] = (
            assessment.decision,
            assessment.score,
            [hit.name for hit in assessment.rule_hits],
            [reason.code for reason in assessment.reasons],
        )
    replayed = replay(
        pl.DataFrame([e.row() for e in events], schema=EVENT_SCHEMA),
        scorer=scorer,
        rules=await services.rules.current(),
    )
    assert replayed.height == len(events)
    differing = [
        (row["event_id"], online[row["event_id"]], batch)
        for row in replayed.iter_rows(named=True)
        if online[row["event_id"]]
        != (batch := (row["decision"], row["score"], row["rule_hits"], row["reasons"]))
    ]
    assert not differing, differing[:5]

    # The comparison means something: every decision but allow-only, rules and reasons.
    decisions = Counter(decision for decision, *_ in online.values())
    assert {"allow", "challenge", "review"} <= decisions.keys(), decisions
    hit_names = Counter(name for _, _, hits, _ in online.values() for name in hits)
    assert {"scored", "watched-device"} <= hit_names.keys(), hit_names
    assert len({score for _, score, _, _ in online.values()}) > 10
    assert sum(bool(reasons) for *_, reasons in online.values()) > 100


async def test_the_replay_command_writes_every_decision(
    services: Services, stream: pl.DataFrame, model: FraudModel, database_url: str, tmp_path: Path
) -> None:
    """`haetae risk replay` uses the rules in force (from the database) and the latest model,
    and writes what the replay decides, the same as calling it directly."""
    models_dir = tmp_path / "cli" / "models"
    registry.save(model, models_dir, metrics={}, meta={})
    await services.rules.save("scored", "review if score >= 20", author="test")
    history = tmp_path / "history.parquet"
    stream.head(2_000).write_parquet(history)
    out = tmp_path / "decisions.parquet"
    env = {
        "HAETAE_DATABASE_URL": database_url,
        "HAETAE_DATA_DIR": str(tmp_path / "cli"),
        "COLUMNS": "200",
    }
    args = ["risk", "replay", "--data", str(history), "--out", str(out)]
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, result.output
    written = pl.read_parquet(out)
    expected = replay(
        pl.read_parquet(history), scorer=Scorer(model), rules=await services.rules.current()
    )
    assert written.height == 2_000
    assert written.select("event_id", "decision", "score", "rule_hits").equals(
        expected.select("event_id", "decision", "score", "rule_hits")
    )
    reviews = written.filter(pl.col("decision") == "review").height
    assert reviews > 0
    assert f"review │ {reviews:,}" in result.stdout.replace("  ", " ").replace("  ", " ")

    missing = CliRunner().invoke(app, [*args[:3], str(tmp_path / "none.parquet")], env=env)
    assert missing.exit_code == 2


async def test_without_a_model_only_the_rules_decide(
    services: Services, stream: pl.DataFrame
) -> None:
    await services.rules.save("large", "review if amount >= 1_000_000", author="test")
    events = stream.head(2_000)
    replayed = replay(events, scorer=None, rules=await services.rules.current())
    assert replayed["score"].unique().to_list() == [0]
    assert replayed["reasons"].list.len().max() == 0
    large = replayed.filter(pl.col("amount") >= 1_000_000)
    assert large.height > 0 and set(large["decision"]) == {"review"}
    assert set(replayed.filter(pl.col("amount") < 1_000_000)["decision"]) == {"allow"}
    assert large["rule_hits"].to_list() == [["large"]] * large.height
