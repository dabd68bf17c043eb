"""The event simulator: reproducible, in the event shape, and its fraud scenarios look like
what they claim to be."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import typer
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from haetae.risk.events import EVENT_SCHEMA
from haetae.simulate.command import register
from haetae.simulate.handbook import HandbookParams, HandbookRun, simulate_handbook
from haetae.simulate.korean import FraudRates, KoreanParams, simulate_korean
from haetae.simulate.run import Profile, simulate
from haetae.simulate.writer import assemble, summarize, write_events

SMALL_HANDBOOK = HandbookParams(customers=1_000, terminals=2_000, days=60)
# Few customers but many cases of each scenario, so every pattern shows up.
SMALL_KOREAN = KoreanParams(
    customers=400,
    days=30,
    fraud=FraudRates(voice_phishing=20, card_testing=10, account_takeover=20, mule_account=10),
)
WON_3M = 3_000_000


@pytest.fixture(scope="module")
def handbook() -> HandbookRun:
    return simulate_handbook(SMALL_HANDBOOK, seed=7)


@pytest.fixture(scope="module")
def korean() -> pl.DataFrame:
    return assemble([simulate_korean(SMALL_KOREAN, seed=7)])


def _scenario(events: pl.DataFrame, name: str) -> pl.DataFrame:
    return events.filter(pl.col("scenario") == name)


def _genuine(events: pl.DataFrame) -> pl.DataFrame:
    return events.filter(pl.col("label") == 0)


# Reproducibility and shape


def test_same_seed_same_history_and_another_seed_another(handbook: HandbookRun) -> None:
    assert_frame_equal(simulate_handbook(SMALL_HANDBOOK, seed=7).events, handbook.events)
    assert not simulate_handbook(SMALL_HANDBOOK, seed=8).events.equals(handbook.events)
    small = replace(KoreanParams(), customers=150, days=10)
    first = simulate(Profile.KOREAN, seed=3, customers=150, days=10)
    assert_frame_equal(first, assemble([simulate_korean(small, seed=3)]))
    assert not first.equals(simulate(Profile.KOREAN, seed=4, customers=150, days=10))


def test_history_has_the_event_shape_and_survives_parquet(
    handbook: HandbookRun, korean: pl.DataFrame, tmp_path: Path
) -> None:
    events = assemble([handbook.events, korean])
    assert events.schema == pl.Schema(EVENT_SCHEMA)
    assert events["event_id"].n_unique() == events.height
    assert events["occurred_at"].is_sorted()
    required = events.select("kind", "customer_id", "occurred_at", "amount", "currency", "label")
    assert required.null_count().row(0) == (0,) * required.width
    assert set(events["currency"].unique()) == {"USD", "KRW"}

    written = write_events(events, tmp_path / "out")
    assert written == tmp_path / "out" / "events.parquet"
    assert_frame_equal(pl.read_parquet(written), events)


# The handbook's card simulator


def test_handbook_labels_follow_its_three_scenarios(handbook: HandbookRun) -> None:
    events = handbook.events
    assert (events["kind"] == "payment").all() and (events["currency"] == "USD").all()
    assert (events.filter(pl.col("amount") > 220_00)["label"] == 1).all()
    assert (_scenario(events, "large_amount")["amount"] > 220_00).all()
    assert (events["label"] == 1).to_list() == events["scenario"].is_not_null().to_list()
    # Every card is one customer's.
    assert events.select(pl.col("card_id").n_unique() == pl.col("customer_id").n_unique()).item()


def _within(events: pl.DataFrame, windows: pl.DataFrame, key: str) -> pl.Series:
    """Per event: does it fall inside one of its terminal's (or customer's) windows?"""
    inside = (
        events.with_row_index("row")
        .join(windows, on=key, how="left")
        .group_by("row")
        .agg(
            ((pl.col("occurred_at") >= pl.col("since")) & (pl.col("occurred_at") < pl.col("until")))
            .any()
            .fill_null(False)
            .alias("inside")
        )
        .sort("row")  # joins and groupings need not keep the events' order
    )
    return inside["inside"]


def test_compromised_terminals_are_fraud_exactly_inside_their_28_days(
    handbook: HandbookRun,
) -> None:
    windows = handbook.compromises.terminals
    assert (windows["until"] - windows["since"] == timedelta(days=28)).all()
    assert windows.height == 2 * SMALL_HANDBOOK.days
    at_terminals = handbook.events.filter(
        pl.col("terminal_id").is_in(windows["terminal_id"].implode())
    )
    inside = _within(at_terminals, windows, "terminal_id")
    # Inside a window: fraud (scenario 3 may claim it last); outside: never scenario 2.
    assert (at_terminals.filter(inside)["label"] == 1).all()
    assert (at_terminals.filter(~inside)["scenario"].ne_missing("compromised_terminal")).all()
    assert _scenario(at_terminals, "compromised_terminal").height > 0


def test_compromised_customers_lose_about_a_third_of_their_payments(
    handbook: HandbookRun,
) -> None:
    windows = handbook.compromises.customers
    assert (windows["until"] - windows["since"] == timedelta(days=14)).all()
    theirs = handbook.events.filter(pl.col("customer_id").is_in(windows["customer_id"].implode()))
    inside = _within(theirs, windows, "customer_id")
    assert (theirs.filter(~inside)["scenario"].ne_missing("compromised_customer")).all()
    share = theirs.filter(inside)["scenario"].eq_missing("compromised_customer").mean()
    assert share is not None and 0.2 < float(share) < 0.5  # a third, more where windows overlap


def test_small_handbook_run_has_a_plausible_fraud_rate(handbook: HandbookRun) -> None:
    summary = summarize(handbook.events)
    # ~58 payments a customer a month; fixed compromises a day weigh more on a small world.
    assert 90_000 < summary.events < 140_000
    assert 0.005 < summary.fraud_rate < 0.08
    assert set(summary.by_scenario) == {
        "large_amount",
        "compromised_terminal",
        "compromised_customer",
    }


# The Korean bank


def test_voice_phishing_reissues_on_a_new_device_then_pays_a_new_payee_within_hours(
    korean: pl.DataFrame,
) -> None:
    fraud = _scenario(korean, "voice_phishing").sort("occurred_at")
    genuine = _genuine(korean)
    victims = fraud["customer_id"].unique().to_list()
    assert len(victims) >= 5
    for victim in victims:
        case = fraud.filter(pl.col("customer_id") == victim)
        known = genuine.filter(pl.col("customer_id") == victim)
        reissue = case.row(0, named=True)
        assert reissue["kind"] == "certificate_reissue"
        assert reissue["device_id"] not in known["device_id"].to_list()
        transfers = case.filter(pl.col("kind") == "transfer")
        assert 1 <= transfers.height <= 3
        assert (transfers["amount"] >= WON_3M).all()
        assert (transfers["device_id"] == reissue["device_id"]).all()
        payee = case.filter(pl.col("kind") == "payee_added").row(0, named=True)
        assert (transfers["payee_account"] == payee["payee_account"]).all()
        assert payee["payee_account"] not in known["payee_account"].to_list()
        assert transfers["occurred_at"].max() - reissue["occurred_at"] < timedelta(hours=5)
    # Often at night in Seoul (21:00-06:00).
    seoul_hours = fraud.filter(pl.col("kind") == "certificate_reissue")["occurred_at"]
    hours = seoul_hours.dt.convert_time_zone("Asia/Seoul").dt.hour()
    assert ((hours >= 21) | (hours < 6)).mean() > 0.4


def test_card_testing_tries_many_cards_from_one_device_mostly_declined(
    korean: pl.DataFrame,
) -> None:
    fraud = _scenario(korean, "card_testing")
    assert (fraud["kind"] == "payment").all()
    assert fraud["amount"].is_between(1_000, 5_000).all()
    attacks = fraud.group_by("device_id").agg(
        cards=pl.col("card_id").n_unique(),
        ips=pl.col("ip").n_unique(),
        approved=pl.col("approved").mean(),
        span=pl.col("occurred_at").max() - pl.col("occurred_at").min(),
    )
    assert attacks.height >= 3
    assert (attacks["cards"] >= 50).all() and (attacks["ips"] == 1).all()
    assert (attacks["approved"] < 0.3).all() and (attacks["span"] < timedelta(hours=1)).all()
    approved = fraud["approved"].mean()
    genuine_approved = _genuine(korean).filter(pl.col("kind") == "payment")["approved"].mean()
    assert approved is not None and genuine_approved is not None
    assert 0 < float(approved) < 0.3 and float(genuine_approved) > 0.9


def test_account_takeover_is_new_device_password_reset_then_transfer_out(
    korean: pl.DataFrame,
) -> None:
    fraud = _scenario(korean, "account_takeover").sort("occurred_at")
    genuine = _genuine(korean)
    victims = fraud["customer_id"].unique().to_list()
    assert len(victims) >= 5
    for victim in victims:
        case = fraud.filter(pl.col("customer_id") == victim)
        known = genuine.filter(pl.col("customer_id") == victim)
        kinds = [kind for kind in case["kind"].to_list() if kind != "payee_added"]
        assert kinds == ["login", "password_reset", "transfer"]
        login = case.row(0, named=True)
        assert login["device_id"] not in known["device_id"].to_list()
        assert login["ip"] not in known["ip"].to_list()
        assert case["device_id"].n_unique() == 1
        transfer = case.filter(pl.col("kind") == "transfer").row(0, named=True)
        assert transfer["payee_account"] not in known["payee_account"].to_list()


def test_mule_accounts_receive_from_many_and_forward_most_of_it(korean: pl.DataFrame) -> None:
    fraud = _scenario(korean, "mule_account")
    assert (fraud["kind"] == "transfer").all()
    per_account = fraud.group_by("payee_account").agg(
        senders=pl.col("customer_id").n_unique(),
        sent=pl.col("amount").sum(),
        bank=pl.col("payee_bank").first(),
    )
    # A mule's account hears from many customers; a cash-out account only from its mule.
    mules = per_account.filter(pl.col("senders") > 1)
    cash_out = per_account.filter(pl.col("senders") == 1)
    assert mules.height >= 3 and (mules["senders"] >= 8).all()
    assert (mules["bank"] == SMALL_KOREAN.home_bank).all()
    forwarding = fraud.filter(pl.col("payee_account").is_in(cash_out["payee_account"].implode()))
    assert forwarding["customer_id"].n_unique() == mules.height
    assert 0.6 < cash_out["sent"].sum() / mules["sent"].sum() <= 1.0


def test_korean_genuine_events_are_unlabelled_won(korean: pl.DataFrame) -> None:
    genuine = _genuine(korean)
    assert genuine["scenario"].is_null().all() and (korean["currency"] == "KRW").all()
    assert set(genuine["kind"].unique()) == {
        "login",
        "transfer",
        "payee_added",
        "payment",
        "certificate_reissue",
        "password_reset",
    }
    accounts = genuine.filter(pl.col("payee_account").is_not_null())
    assert accounts["payee_account"].str.contains(r"^[0-9-]+$").all()
    assert accounts["payee_bank"].str.contains(r"^[0-9]{3}$").all()
    assert 0 < summarize(korean).fraud_rate < 0.2


# The command


def test_simulate_command_writes_parquet_and_prints_a_summary(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """Keep `simulate` a subcommand."""

    out = tmp_path / "events.parquet"
    args = ["simulate", "--out", str(out), "--customers", "150", "--days", "5"]
    result = CliRunner().invoke(app, [*args, "--start", "2024-01-01", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "fraud, all scenarios" in result.stdout
    events = pl.read_parquet(out)
    assert events.schema == pl.Schema(EVENT_SCHEMA)
    assert set(events["currency"].unique()) == {"USD", "KRW"}
    # The first day starts at midnight in Seoul for the Korean events, in UTC for the cards.
    first = events["occurred_at"].min()
    assert isinstance(first, datetime) and first >= datetime(2023, 12, 31, 15, tzinfo=UTC)
