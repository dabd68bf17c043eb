"""The fraud model: the handbook's metrics and protocol, training, calibration, reasons, the
registry, online scoring and the `train` / `evaluate` commands."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from haetae.risk.events import conform
from haetae.risk.model import calibration, metrics, protocol, registry
from haetae.risk.model.command import register
from haetae.risk.model.data import DataError, parse_mapping, read_events
from haetae.risk.model.explain import ReasonCatalog
from haetae.risk.model.handbook_baseline import HandbookBaseline
from haetae.risk.model.pipeline import evaluate
from haetae.risk.model.protocol import CARD, DAY, Split
from haetae.risk.model.scorer import Scorer
from haetae.risk.model.train import FraudModel, TrainParams, fit, matrix

START = date(2024, 3, 1)
SPLIT = Split(START + timedelta(days=12))  # train 13–19 Mar, delay 20–26, test 27 Mar–2 Apr
HANDBOOK_MAP = (
    "transaction_id=TRANSACTION_ID,timestamp=TX_DATETIME,amount=TX_AMOUNT,label=TX_FRAUD,"
    "customer_id=CUSTOMER_ID,card_id=CUSTOMER_ID,terminal_id=TERMINAL_ID"
)
FAST = TrainParams(num_threads=1, max_rounds=200, early_stopping_rounds=30)


def _history(days: int = 34, customers: int = 150, seed: int = 1) -> pl.DataFrame:
    """A labelled history in the handbook's columns. Fraud: amounts six times the customer's
    usual (2%), and every payment at terminals T0-T2 from the 5th day (compromised)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    usual = rng.uniform(20, 100, customers)
    haunts = [rng.choice(60, 4, replace=False) for _ in range(customers)]
    for day in range(days):
        for c in range(customers):
            for _ in range(rng.poisson(2)):
                terminal = int(rng.choice(haunts[c]))
                amount = max(1.0, rng.normal(usual[c], usual[c] / 4))
                fraud = terminal < 3 and day >= 4
                if rng.random() < 0.02:
                    amount, fraud = amount * 6, True
                at = datetime(START.year, START.month, START.day, tzinfo=UTC) + timedelta(
                    days=day, seconds=int(rng.uniform(0, 86_399))
                )
                rows.append(
                    {
                        "TX_DATETIME": at.strftime("%Y-%m-%d %H:%M:%S"),
                        "CUSTOMER_ID": c,
                        "TERMINAL_ID": f"T{terminal}",
                        "TX_AMOUNT": round(amount, 2),
                        "TX_FRAUD": int(fraud),
                    }
                )
    frame = pl.DataFrame(rows).sort("TX_DATETIME")
    return frame.with_row_index("TRANSACTION_ID").with_columns(pl.col("TRANSACTION_ID") + 1000)


@pytest.fixture(scope="module")
def history_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "transactions.csv"
    _history().write_csv(path)
    return path


@pytest.fixture(scope="module")
def events(history_csv: Path) -> pl.DataFrame:
    return read_events(history_csv, parse_mapping(HANDBOOK_MAP))


@pytest.fixture(scope="module")
def featured(events: pl.DataFrame) -> pl.DataFrame:
    return protocol.with_keys(HandbookBaseline().compute(events))


@pytest.fixture(scope="module")
def model(featured: pl.DataFrame) -> FraudModel:
    return fit(protocol.training_rows(featured, SPLIT), HandbookBaseline().names, FAST)


# --- metrics ---------------------------------------------------------------------------------


def test_auc_and_average_precision_on_a_hand_example() -> None:
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    # AUC: of the 4 (fraud, genuine) pairs, 3 have the fraud above.
    assert metrics.auc_roc(labels, scores) == pytest.approx(0.75)
    # Frauds at ranks 1 and 3: precision 1/1 and 2/3 there.
    assert metrics.average_precision(labels, scores) == pytest.approx((1 + 2 / 3) / 2)


def _scored(rows: Sequence[tuple[int, str, float, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            DAY: [START + timedelta(days=d) for d, *_ in rows],
            CARD: [card for _, card, _, _ in rows],
            "score": [score for *_, score, _ in rows],
            "label": [label for *_, label in rows],
        }
    )


def test_card_precision_takes_each_cards_best_score_and_drops_cards_found() -> None:
    scored = _scored(
        [
            # day 0: A (best 0.9, one fraud) and B fill the top 2; C's fraud is missed.
            (0, "A", 0.9, 1),
            (0, "A", 0.2, 0),
            (0, "B", 0.8, 0),
            (0, "C", 0.1, 1),
            # day 1: A was found, so it is gone; C and D fill the top 2.
            (1, "A", 0.99, 1),
            (1, "B", 0.5, 0),
            (1, "C", 0.7, 1),
            (1, "D", 0.6, 0),
            # day 2: one card only; precision still divides by k.
            (2, "E", 0.3, 1),
        ]
    )
    assert metrics.card_precision_daily(scored, k=2) == [0.5, 0.5, 0.5]
    assert metrics.card_precision_at_k(scored, k=2) == pytest.approx(0.5)
    assert metrics.card_precision_daily(scored, k=1) == [1.0, 1.0, 1.0]


# --- protocol --------------------------------------------------------------------------------


def _event(card: str, day: date, label: int) -> dict[str, object]:
    return {
        "event_id": f"{card}-{day.isoformat()}",
        "occurred_at": datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
        "customer_id": card,
        "card_id": card,
        "amount": 100,
        "label": label,
    }


def test_split_periods_follow_the_handbook() -> None:
    split = Split(date(2018, 7, 25))
    assert (split.train_end, split.test_start, split.test_end) == (
        date(2018, 8, 1),
        date(2018, 8, 8),
        date(2018, 8, 15),
    )
    assert Split.latest(date(2018, 8, 14)) == split


def test_test_set_leaves_out_cards_known_compromised_by_that_day() -> None:
    s = date(2024, 1, 1)
    split = Split(s)
    test_days = [s + timedelta(days=14 + d) for d in range(7)]
    rows = [
        _event("before", s - timedelta(days=1), 1),  # before training: not known
        _event("train", s + timedelta(days=3), 1),  # in training: known all week
        _event("delay", s + timedelta(days=8), 1),  # 2nd delay day: known from test day 3
        _event("genuine", s + timedelta(days=8), 0),
    ]
    for day in test_days:
        rows += [_event(card, day, 0) for card in ("before", "train", "delay", "genuine")]
    rows.append(_event("unlabelled", test_days[0], 0) | {"label": None})
    events = protocol.with_keys(conform(pl.DataFrame(rows)))

    kept = protocol.test_rows(events, split)
    by_card = kept.group_by(CARD).agg(pl.col(DAY).sort()).sort(CARD)
    days = dict(zip(by_card[CARD], by_card[DAY], strict=True))
    assert "train" not in days and "unlabelled" not in days
    assert days["before"].to_list() == test_days
    assert days["genuine"].to_list() == test_days
    # The handbook adds one delay day's frauds per test day: day s+8's on test day s+16.
    assert days["delay"].to_list() == test_days[:2]
    assert protocol.test_period(events, split).height == 4 * 7 + 1
    assert protocol.training_rows(events, split)[CARD].to_list() == ["train"]


# --- data ------------------------------------------------------------------------------------


def test_mapping_reads_decimal_amounts_as_minor_units(events: pl.DataFrame) -> None:
    assert events.schema["amount"] == pl.Int64
    assert events["currency"].unique().to_list() == ["USD"]
    assert events["event_id"][0] == "1000"
    assert events["occurred_at"].dtype == pl.Datetime("us", "UTC")
    assert events["card_id"].to_list() == events["customer_id"].to_list()


def test_read_events_converts_amounts_and_times(tmp_path: Path) -> None:
    path = tmp_path / "own.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "when", "won", "fraud", "who", "ccy"])
        writer.writerow(["a", "2024-05-01T09:00:00+09:00", "57.16", "1", "c1", "USD"])
        writer.writerow(["b", "2024-05-01T10:00:00+09:00", "15000", "0", "c2", "KRW"])
    mapping = parse_mapping(
        "transaction_id=id,timestamp=when,amount=won,label=fraud,customer_id=who,currency=ccy"
    )
    events = read_events(path, mapping)
    assert events["amount"].to_list() == [5716, 15000]
    assert events["occurred_at"][0] == datetime(2024, 5, 1, 0, tzinfo=UTC)
    assert events["kind"].to_list() == ["payment", "payment"]


def test_data_errors_name_the_column(tmp_path: Path, history_csv: Path) -> None:
    with pytest.raises(DataError, match="'TX_WHEN' \\(mapped to occurred_at\\)"):
        read_events(history_csv, parse_mapping(HANDBOOK_MAP.replace("TX_DATETIME", "TX_WHEN")))
    with pytest.raises(DataError, match="no label column: map one with --map label=COLUMN"):
        read_events(history_csv, parse_mapping(HANDBOOK_MAP.replace(",label=TX_FRAUD", "")))
    with pytest.raises(DataError, match="'colour' is not one of"):
        parse_mapping("colour=TX_FRAUD")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,t,a,l,c\nx,2024-01-01 00:00:00,1.5,2,c\n")
    with pytest.raises(DataError, match="label"):
        read_events(
            bad, parse_mapping("transaction_id=id,timestamp=t,amount=a,label=l,customer_id=c")
        )


# --- training, calibration, reasons ----------------------------------------------------------


def _test_scores(model: FraudModel, featured: pl.DataFrame) -> pl.DataFrame:
    rows = protocol.test_rows(protocol.test_period(featured, SPLIT), SPLIT)
    return rows.with_columns(pl.Series("score", model.scores(matrix(rows, model.feature_names))))


def test_training_separates_fraud_from_genuine(model: FraudModel, featured: pl.DataFrame) -> None:
    scored = _test_scores(model, featured)
    result = metrics.metrics_of(scored)
    assert result.auc_roc > 0.9
    assert result.average_precision > 0.6
    assert model.info["rounds"] >= 1


def test_training_is_deterministic_for_a_seed(model: FraudModel, featured: pl.DataFrame) -> None:
    again = fit(protocol.training_rows(featured, SPLIT), model.feature_names, FAST)
    assert again.booster.model_to_string() == model.booster.model_to_string()


def test_calibrated_score_is_monotone_within_0_and_100(model: FraudModel) -> None:
    margins = np.linspace(-20, 20, 2001)
    probabilities = model.calibration.probability(margins)
    assert np.all(np.diff(probabilities) > 0)
    assert probabilities[0] >= 0 and probabilities[-1] <= 1
    one = [model.calibration.probability_one(float(m)) for m in margins[::50]]
    assert one == pytest.approx(probabilities[::50].tolist())


def test_calibration_matches_observed_rates() -> None:
    rng = np.random.default_rng(3)
    margins = rng.normal(0, 2, 20_000)
    truth = 1 / (1 + np.exp(-(0.5 * margins - 2)))  # an over-confident model
    labels = (rng.random(20_000) < truth).astype(int)
    fitted = calibration.fit(margins, labels)
    probe = np.array([-3.0, 0.0, 3.0])
    assert fitted.probability(probe) == pytest.approx(
        1 / (1 + np.exp(-(0.5 * probe - 2))), abs=0.03
    )
    again = calibration.Calibration.from_dict(fitted.as_dict())
    assert again == fitted


def _one(featured: pl.DataFrame, condition: pl.Expr) -> dict[str, float]:
    row = protocol.test_period(featured, SPLIT).filter(condition).row(0, named=True)
    return {name: row[name] for name in HandbookBaseline().names}


def test_reasons_name_the_feature_that_drives_a_fraud(
    model: FraudModel, featured: pl.DataFrame
) -> None:
    scorer = Scorer(model)
    not_terminal = pl.col("terminal_id").is_in(["T0", "T1", "T2"]).not_()
    large = _one(featured, (pl.col("label") == 1) & not_terminal & (pl.col("amount") > 20_000))
    score, reasons = scorer.score(large)
    assert score >= 50
    assert reasons[0].feature == "amount"
    assert "배" in reasons[0].ko and "x the customer's usual" in reasons[0].en
    assert all(reason.contribution > 0 for reason in reasons)

    compromised = _one(featured, (pl.col("label") == 1) & (pl.col("terminal_id") == "T0"))
    _, reasons = scorer.score(compromised)
    assert reasons[0].feature.startswith("terminal_fraud_rate_")
    assert "confirmed fraud at this terminal" in reasons[0].en and "사기 비율" in reasons[0].ko

    genuine = _one(featured, (pl.col("label") == 0) & (pl.col("terminal_fraud_rate_7d") == 0))
    low, _ = scorer.score(genuine)
    assert low < 10


def test_reasons_fall_back_to_the_generic_text() -> None:
    catalog = ReasonCatalog.load(["mystery", "is_night", "amount"])
    reasons = catalog.explain([0.5, 0.2, -1.0, -3.0], [3.0, 0.0, 100.0])
    assert [r.feature for r in reasons] == ["mystery", "is_night"]  # positive ones only
    assert reasons[0].en == "mystery of 3 raised the risk" and reasons[0].code == "mystery"
    # The flag's own text says "at night": not for a daytime event.
    assert reasons[1].en == "night flag of 0 raised the risk"
    assert reasons[1].ko == "야간 거래 여부 값 0이(가) 위험을 높였습니다"


def test_scorer_matches_batch_scores_and_takes_missing_values(
    model: FraudModel, featured: pl.DataFrame
) -> None:
    scorer = Scorer(model)
    rows = protocol.test_period(featured, SPLIT).head(200)
    batch = model.scores(matrix(rows, model.feature_names))
    for row, expected in zip(rows.iter_rows(named=True), batch, strict=True):
        got, _ = scorer.score({name: row[name] for name in model.feature_names})
        assert got == round(float(expected))
    score, reasons = scorer.score({"amount": 50_000.0})  # the rest missing
    assert 0 <= score <= 100 and len(reasons) <= 3


# --- registry --------------------------------------------------------------------------------


def test_registry_round_trip(model: FraudModel, featured: pl.DataFrame, tmp_path: Path) -> None:
    models = tmp_path / "models"
    saved = registry.save(
        model,
        models,
        metrics={"auc_roc": 0.9},
        meta={"data": "synthetic"},
        now=datetime(2026, 11, 22, 3, 1, tzinfo=UTC),
    )
    assert re.fullmatch(r"v20261122-0301-[0-9a-f]{8}", saved.version)
    assert sorted(p.name for p in saved.path.iterdir()) == [
        "calibration.json",
        "features.json",
        "meta.json",
        "metrics.json",
        "model.txt",
    ]
    loaded = registry.load(models, "latest", available=HandbookBaseline().names)
    assert loaded.version == saved.version
    assert loaded.metrics == {"auc_roc": 0.9}
    assert loaded.meta["data"] == "synthetic" and loaded.meta["lightgbm_version"]
    features = matrix(protocol.test_period(featured, SPLIT), model.feature_names)
    assert np.allclose(loaded.model.scores(features), model.scores(features))
    assert Scorer.load(models).version == saved.version

    with pytest.raises(registry.RegistryError, match="lacks: terminal_fraud_rate_1d"):
        registry.load(
            models, available=[n for n in model.feature_names if n != "terminal_fraud_rate_1d"]
        )
    with pytest.raises(registry.RegistryError, match="no model 'v1'"):
        registry.load(models, "v1")
    with pytest.raises(registry.RegistryError, match="train one"):
        registry.load(tmp_path / "empty")


# --- the pipeline with an injected builder, and the commands ---------------------------------


class _AmountOnly:
    """A builder of one feature: the amount over the customer's running mean."""

    names = ("amount_ratio",)

    def compute(self, events: pl.DataFrame) -> pl.DataFrame:
        mean = pl.col("amount").cum_sum().over("customer_id") / pl.int_range(1, pl.len() + 1).over(
            "customer_id"
        )
        return events.sort("occurred_at").with_columns(
            (pl.col("amount") / mean).alias("amount_ratio")
        )


def test_pipeline_uses_the_injected_builder(events: pl.DataFrame) -> None:
    result = evaluate(events, _AmountOnly(), SPLIT, FAST)
    assert result.model.feature_names == ("amount_ratio",)
    assert 0.5 < result.metrics.auc_roc <= 1
    assert result.scores.height == protocol.test_period(protocol.with_keys(events), SPLIT).height


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_evaluate_prints_metrics_as_json_and_writes_scores(
    history_csv: Path, tmp_path: Path
) -> None:
    scores = tmp_path / "out" / "scores.csv"
    result = CliRunner().invoke(
        _app(),
        [
            "evaluate",
            "--data",
            str(history_csv),
            "--map",
            HANDBOOK_MAP,
            "--train-start",
            SPLIT.train_start.isoformat(),
            "--train-days",
            "7",
            "--delay-days",
            "7",
            "--test-days",
            "7",
            "--threads",
            "1",
            "--scores-out",
            str(scores),
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert set(printed) == {"auc_roc", "average_precision", "card_precision_at_100"}
    assert printed["auc_roc"] > 0.9

    written = pl.read_csv(scores)
    assert written.columns == ["transaction_id", "score"]
    history = pl.read_csv(history_csv).with_columns(
        pl.col("TX_DATETIME").str.to_datetime().dt.date().alias("day")
    )
    in_test = history.filter(
        pl.col("day").is_between(SPLIT.test_start, SPLIT.test_end, closed="left")
    )
    assert sorted(written["transaction_id"].to_list()) == sorted(
        in_test["TRANSACTION_ID"].to_list()
    )
    assert written["score"].is_between(0, 100).all()


def test_evaluate_names_a_missing_column(history_csv: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["evaluate", "--data", str(history_csv), "--map", "timestamp=WHEN"]
    )
    assert result.exit_code == 2
    assert "WHEN" in result.output


def test_train_saves_a_versioned_model(history_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    result = CliRunner().invoke(
        _app(),
        [
            "train",
            "--data",
            str(history_csv),
            "--map",
            HANDBOOK_MAP,
            "--out",
            str(out),
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.parent == out and (out / "LATEST").read_text().strip() == path.name
    meta = json.loads((path / "meta.json").read_text())
    assert meta["protocol"]["train_days"] == 7 and meta["data"] == str(history_csv)
    assert set(json.loads((path / "metrics.json").read_text())) >= {
        "auc_roc",
        "average_precision",
        "card_precision_at_100",
    }
