"""The rule language: parsing, checking with errors that point at the token at fault,
the online closure and the Polars expression agreeing, and backtest arithmetic."""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haetae.risk.events import RiskEvent
from haetae.risk.rules.backtest import run_backtest
from haetae.risk.rules.compiler import ListLookup, to_expr, to_predicate
from haetae.risk.rules.errors import RuleError
from haetae.risk.rules.history import FrameHistory, HistoryUnavailable, ParquetHistory
from haetae.risk.rules.names import ValueType, event_values
from haetae.risk.rules.nodes import And, Flag, Or, list_names, names
from haetae.risk.rules.parser import MAX_DEPTH, parse
from haetae.risk.rules.ruleset import CompiledRule, RuleHit, RuleSet, compile_rule
from haetae.risk.rules.validate import parse_rule

FEATURES: dict[str, ValueType] = {
    "payee.is_new": "bool",
    "hours_since_cert_reissue": "number",
    "device.distinct_cards_24h": "number",
    "device.is_new": "bool",
}
LISTS: dict[str, frozenset[object]] = {"mule_accounts": frozenset({"110-123-456789"})}


def holds(text: str, values: Mapping[str, object], lists: ListLookup = LISTS) -> bool:
    rule = parse_rule(text, FEATURES, lists.keys())
    return to_predicate(rule.condition)(values, lists)


def error_of(text: str, lists: ListLookup = LISTS) -> RuleError:
    with pytest.raises(RuleError) as caught:
        parse_rule(text, FEATURES, lists.keys())
    return caught.value


# --- the issue's examples ---------------------------------------------------------------

BIG_NEW_PAYEE = "block if amount > 3_000_000 and payee.is_new and hours_since_cert_reissue < 24"


def test_the_issues_examples_parse_to_their_decisions() -> None:
    assert parse(BIG_NEW_PAYEE).decision == "block"
    assert parse("challenge if device.distinct_cards_24h >= 5").decision == "challenge"
    assert parse("review if score >= 70").decision == "review"
    assert parse("block if payee.account in @mule_accounts").decision == "block"
    rule = parse(BIG_NEW_PAYEE)
    assert isinstance(rule.condition, And)
    assert names(rule.condition) == ["amount", "payee.is_new", "hours_since_cert_reissue"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"amount": 3_000_001, "payee.is_new": True, "hours_since_cert_reissue": 2}, True),
        ({"amount": 3_000_000, "payee.is_new": True, "hours_since_cert_reissue": 2}, False),
        ({"amount": 5_000_000, "payee.is_new": False, "hours_since_cert_reissue": 2}, False),
        ({"amount": 5_000_000, "payee.is_new": True, "hours_since_cert_reissue": 24}, False),
        ({"amount": 5_000_000, "payee.is_new": True, "hours_since_cert_reissue": 23.5}, True),
        # never reissued: the feature is missing, and a comparison with a missing value fails
        ({"amount": 5_000_000, "payee.is_new": True, "hours_since_cert_reissue": None}, False),
        ({"amount": 5_000_000, "payee.is_new": True}, False),
    ],
)
def test_large_transfer_to_a_new_payee_after_a_reissue(
    values: dict[str, object], expected: bool
) -> None:
    assert holds(BIG_NEW_PAYEE, values) is expected


def test_the_other_examples_evaluate() -> None:
    assert holds("challenge if device.distinct_cards_24h >= 5", {"device.distinct_cards_24h": 5})
    assert not holds(
        "challenge if device.distinct_cards_24h >= 5", {"device.distinct_cards_24h": 4}
    )
    assert holds("review if score >= 70", {"score": 70})
    assert not holds("review if score >= 70", {"score": 69.9})
    mule = "block if payee.account in @mule_accounts"
    assert holds(mule, {"payee.account": "110-123-456789"})
    assert not holds(mule, {"payee.account": "110-999-000000"})
    assert not holds(mule, {})


# --- the rest of the language -----------------------------------------------------------


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    rule = parse("block if device.is_new or payee.is_new and score > 5")
    assert isinstance(rule.condition, Or)
    assert isinstance(rule.condition.conditions[0], Flag)
    assert isinstance(rule.condition.conditions[1], And)
    values = {"device.is_new": True, "payee.is_new": False, "score": 0}
    assert holds("block if device.is_new or payee.is_new and score > 5", values)
    assert not holds("block if (device.is_new or payee.is_new) and score > 5", values)


def test_comments_lines_strings_numbers_and_lists() -> None:
    text = """
    # new payee, money moving
    review if payee.is_new          # the payee
       and kind in ["transfer", 'payment',]   # trailing comma is fine
       and amount between 1_000.5 and 2_000_000  # inclusive
       and currency != "USD"
       and customer_id not in ["it's \\"me\\""]
       and score > -1
    """
    values = {
        "payee.is_new": True,
        "kind": "transfer",
        "amount": 2_000_000,
        "currency": "KRW",
        "customer_id": 'it\'s "me"',
        "score": 0,
    }
    assert not holds(text, values)  # the customer is on the literal list
    assert holds(text, {**values, "customer_id": "someone"})
    assert not holds(text, {**values, "customer_id": "someone", "amount": 1_000})
    assert holds("allow if customer_id == 'a\\nb\\t\\\\'", {"customer_id": "a\nb\t\\"})


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("block if not payee.is_new", {"payee.is_new": False}, True),
        ("block if not payee.is_new", {}, True),  # missing is not true; "not" of it holds
        ("block if payee.is_new == false", {}, False),  # a comparison with missing fails
        ("block if kind not in ['login']", {"kind": "transfer"}, True),
        ("block if kind not in ['login']", {}, False),
        ("block if not kind in ['login']", {}, True),
        ("block if amount not between 10 and 20", {"amount": 21}, True),
        ("block if amount not between 10 and 20", {"amount": 10}, False),
        ("block if amount not between 10 and 20", {}, False),
        ("block if amount > device.distinct_cards_24h", {"amount": 3}, False),
        (
            "block if amount > device.distinct_cards_24h",
            {"amount": 3, **{"device.distinct_cards_24h": 2}},
            True,
        ),
        ("block if 1_000 <= amount", {"amount": 1000}, True),
        ("block if amount in [1, 2.5]", {"amount": 2.5}, True),
        ("block if amount in [1, 2.5]", {"amount": 1.0}, True),
    ],
)
def test_missing_values_and_negations(text: str, values: dict[str, object], expected: bool) -> None:
    assert holds(text, values) is expected


def test_list_names_are_collected() -> None:
    rule = parse("block if payee.account in @a or (device.id in @b and not card_id in @a)")
    assert list_names(rule.condition) == ["a", "b"]


# --- errors, with where ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "line", "column", "says"),
    [
        ("block if amout > 1", "name", 1, 10, "unknown name 'amout' (did you mean 'amount'?)"),
        (
            "block if amount > 1\n  and payee.is_neww",
            "name",
            2,
            7,
            "did you mean 'payee.is_new'?",
        ),
        ("block if payee.account in @mule_acounts", "list", 1, 27, "did you mean @mule_accounts?"),
        ("block if payee.account in @nothing_like_it", "list", 1, 27, "no list named"),
        ("block if payee.is_new > 5", "type", 1, 10, "> compares numbers"),
        ("block if payee.is_new == 1", "type", 1, 26, "is true/false but 1 is a number"),
        ("block if amount == '5'", "type", 1, 20, "is a number but '5' is text"),
        ("block if amount", "type", 1, 10, "'amount' is a number, not true/false"),
        ("block if amount in @mule_accounts", "type", 1, 10, "@mule_accounts holds text"),
        ("block if kind in ['login', 3]", "type", 1, 28, "this list item is a number"),
        ("block if kind between 1 and 2", "type", 1, 10, "between compares numbers"),
        ("block if 1 < 2", "type", 1, 10, "fixed values only"),
        ("blok if amount > 1", "syntax", 1, 1, "did you mean 'block'?"),
        ("block amount > 1", "syntax", 1, 7, "expected 'if'"),
        ("block if amount = 1", "syntax", 1, 17, "write == to compare"),
        ("block if amount > 1 adn score > 1", "syntax", 1, 21, "did you mean 'and'?"),
        ("block if amount >", "syntax", 1, 18, "the rule ends too early"),
        ("block if (amount > 1\n", "syntax", 1, 21, "expected ')'"),
        ("block if kind in []", "syntax", 1, 19, "unexpected ']'"),
        ("block if kind == 'open", "syntax", 1, 18, "same quote"),
        ("block if kind == 'a\\q'", "syntax", 1, 20, "unknown escape"),
        ("", "syntax", 1, 1, "the rule is empty"),
        ("# only a comment", "syntax", 1, 1, "the rule is empty"),
        ("block if amount > 1 && score > 1", "syntax", 1, 21, "write 'and'"),
        ("BLOCK if amount > 1", "syntax", 1, 1, "starts with allow, challenge, review or block"),
    ],
)
def test_errors_say_what_and_where(text: str, kind: str, line: int, column: int, says: str) -> None:
    error = error_of(text)
    assert (error.kind, error.line, error.column) == (kind, line, column), str(error)
    assert says in error.message
    assert str(error).startswith(f"line {line}, column {column}: ")


def test_python_in_a_rule_is_only_a_syntax_error() -> None:
    for text in (
        "block if __import__('os').system('touch /tmp/pwned')",
        "block if amount > (lambda: 1)()",
        "block if exec('1')",
        "block if amount.__class__ == 1",
    ):
        with pytest.raises(RuleError) as caught:
            parse_rule(text, FEATURES, LISTS.keys())
        assert caught.value.kind in ("syntax", "name")
    # a bare dunder name is just a name nobody defined
    assert error_of("block if __import__").message.startswith("unknown name '__import__'")


def test_nothing_is_evaluated_as_python(monkeypatch: pytest.MonkeyPatch) -> None:
    parse("allow if amount > 1")  # build the parser first (the grammar itself is Lark's)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("eval, exec or compile was called")

    for builtin in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, builtin, forbidden)
    frame = pl.DataFrame({"amount": [5_000_000], "payee.is_new": [True]})
    for text in (BIG_NEW_PAYEE, "block if payee.account in @mule_accounts or kind == 'x'"):
        rule = parse_rule(text, FEATURES, LISTS.keys())
        to_predicate(rule.condition)({"amount": 1}, LISTS)
        to_expr(rule.condition, LISTS)
    frame.select(to_expr(parse_rule("block if amount > 1", FEATURES, ()).condition, LISTS))


def test_deep_nesting_is_refused_not_a_crash() -> None:
    deep = "block if " + "not " * (MAX_DEPTH + 5) + "payee.is_new"
    assert "nests too deeply" in error_of(deep).message
    parens = "block if " + "(" * 200 + "payee.is_new" + ")" * 200
    assert "nests too deeply" in error_of(parens).message
    assert holds("block if " + "(" * 20 + "payee.is_new" + ")" * 20, {"payee.is_new": True})


def test_long_flat_conditions_compile_without_recursion() -> None:
    text = "block if " + " and ".join(["amount > 1"] * 1500)
    assert holds(text, {"amount": 2})
    assert not holds(text.replace(" and ", " or "), {"amount": 1})


# --- online and offline agree -----------------------------------------------------------

_NUMBERS = ("n.int", "n.float")
_AGREE_TYPES: dict[str, ValueType] = {
    "n.int": "number",
    "n.float": "number",
    "b.flag": "bool",
    "s.text": "string",
}
_AGREE_LISTS: dict[str, frozenset[object]] = {"letters": frozenset({"a", "b"}), "none": frozenset()}
_number = st.sampled_from(["-2", "0", "1", "2.5", "3", "1_000"])
_text = st.sampled_from(['"a"', '"b"', "'c'", "''"])


def _atoms() -> st.SearchStrategy[str]:
    num = st.sampled_from(_NUMBERS)
    op = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    return st.one_of(
        st.builds("{} {} {}".format, num, op, _number),
        st.builds("{} {} {}".format, _number, op, num),
        st.builds("{} {} {}".format, num, op, num),
        st.sampled_from(["b.flag", "b.flag == true", "b.flag != false", "b.flag == false"]),
        st.builds("s.text {} {}".format, st.sampled_from(["==", "!="]), _text),
        st.builds(
            "s.text {} [{}]".format,
            st.sampled_from(["in", "not in"]),
            st.lists(_text, min_size=1, max_size=3).map(", ".join),
        ),
        st.builds(
            "s.text {} @{}".format,
            st.sampled_from(["in", "not in"]),
            st.sampled_from(["letters", "none"]),
        ),
        st.builds(
            "{} {} [{}]".format,
            num,
            st.sampled_from(["in", "not in"]),
            st.lists(_number, min_size=1, max_size=3).map(", ".join),
        ),
        st.builds(
            "{} {} {} and {}".format,
            num,
            st.sampled_from(["between", "not between"]),
            st.one_of(_number, num),
            _number,
        ),
    )


_conditions = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        inner.map("not ({})".format),
        st.builds("({}) and ({})".format, inner, inner),
        st.builds("({}) or ({})".format, inner, inner),
        st.lists(inner, min_size=3, max_size=4).map(
            lambda parts: " or ".join(f"({p})" for p in parts)
        ),
    ),
    max_leaves=8,
)
_rows = st.lists(
    st.fixed_dictionaries(
        {
            "n.int": st.none() | st.integers(-3, 3),
            "n.float": st.none() | st.sampled_from([-2.0, 0.0, 1.0, 2.5, 3.0, 999.5]),
            "b.flag": st.none() | st.booleans(),
            "s.text": st.none() | st.sampled_from(["a", "b", "c", ""]),
        }
    ),
    min_size=1,
    max_size=25,
)
_SCHEMA = {"n.int": pl.Int64, "n.float": pl.Float64, "b.flag": pl.Boolean, "s.text": pl.String}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(condition=_conditions, rows=_rows)
def test_the_closure_and_the_polars_expression_agree(
    condition: str, rows: list[dict[str, Any]]
) -> None:
    rule = parse_rule(f"block if {condition}", _AGREE_TYPES, _AGREE_LISTS.keys())
    frame = pl.DataFrame(rows, schema=_SCHEMA)
    online = [
        to_predicate(rule.condition)(row, _AGREE_LISTS) for row in frame.iter_rows(named=True)
    ]
    offline = frame.select(to_expr(rule.condition, _AGREE_LISTS).alias("hit"))["hit"].to_list()
    assert online == offline


def test_a_column_of_nothing_but_nulls_is_missing_everywhere() -> None:
    frame = pl.DataFrame({"amount": [None, None], "payee.is_new": [None, None]})
    for text in ("block if amount > 1", "block if payee.is_new", "block if not payee.is_new"):
        rule = parse_rule(text, FEATURES, ())
        offline = frame.select(to_expr(rule.condition, {}).alias("x"))["x"].to_list()
        assert offline == [
            to_predicate(rule.condition)(row, {}) for row in frame.iter_rows(named=True)
        ]


# --- the compiled set -------------------------------------------------------------------


def _compiled(
    name: str, text: str, kinds: frozenset[str] | None = None, version: int = 1
) -> CompiledRule:
    return compile_rule(name, version, parse_rule(text, FEATURES, LISTS.keys()), kinds)


def test_a_rule_set_applies_rules_by_kind_most_severe_first() -> None:
    rules = RuleSet(
        [
            _compiled("z-review", "review if score >= 70"),
            _compiled("a-challenge", "challenge if amount > 10"),
            _compiled("big", "block if amount > 100", frozenset({"transfer"})),
            _compiled("mule", "block if payee.account in @mule_accounts", frozenset({"transfer"})),
        ],
        LISTS,
    )
    values = {"amount": 1_000, "score": 80, "payee.account": "110-123-456789"}
    assert [h.name for h in rules.evaluate("transfer", values)] == [
        "big",
        "mule",
        "z-review",
        "a-challenge",
    ]
    assert [h.name for h in rules.evaluate("payment", values)] == ["z-review", "a-challenge"]
    assert [h.name for h in rules.evaluate("something_new", values)] == ["z-review", "a-challenge"]


def test_a_value_of_the_wrong_type_fails_only_its_rule() -> None:
    rules = RuleSet(
        [_compiled("n", "block if amount > 10"), _compiled("s", "review if score > 1")], {}
    )
    assert rules.evaluate("payment", {"amount": "lots", "score": 5}) == [RuleHit("s", 1, "review")]


def test_twenty_rules_cost_a_few_microseconds_each() -> None:
    texts = [
        BIG_NEW_PAYEE,
        "challenge if device.distinct_cards_24h >= 5",
        "review if score >= 70",
        "block if payee.account in @mule_accounts",
        "review if kind in ['transfer', 'payment'] and amount between 1_000_000 and 5_000_000",
    ] * 4
    rules = RuleSet([_compiled(f"r{i}", t) for i, t in enumerate(texts)], LISTS)
    values = {
        "amount": 4_000_000,
        "kind": "transfer",
        "payee.is_new": True,
        "hours_since_cert_reissue": 3.0,
        "device.distinct_cards_24h": 1,
        "score": 42,
        "payee.account": "110-000-000000",
    }
    rounds = 2_000
    started = time.perf_counter()
    for _ in range(rounds):
        rules.evaluate("transfer", values)
    per_rule = (time.perf_counter() - started) / rounds / len(texts)
    # Typically well under a microsecond; the bound only catches a gross regression.
    assert per_rule < 20e-6, f"{per_rule * 1e6:.2f} µs per rule"


def test_event_values_name_the_events_own_fields() -> None:
    event = RiskEvent.model_validate(
        {
            "kind": "transfer",
            "customer_id": "c1",
            "occurred_at": "2026-11-22T10:00:00+09:00",
            "amount": 5_000_000,
            "payee": {"bank_code": "004", "account_number": "110-123-456789"},
            "device": {"id": "d1", "ip": "203.0.113.7"},
        }
    )
    values = event_values(event, score=80)
    assert values["payee.account"] == "110-123-456789"
    assert values["device.ip"] == "203.0.113.7"
    assert holds("block if payee.account in @mule_accounts and score > 70", values)


# --- backtests --------------------------------------------------------------------------


def history_frame() -> pl.DataFrame:
    """Six events: two frauds (one KRW, one USD), a genuine big transfer, an unlabelled one."""
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4", "e5", "e6"],
            "kind": ["transfer", "transfer", "transfer", "payment", "payment", "login"],
            "occurred_at": [at.replace(day=d) for d in (1, 2, 3, 4, 5, 6)],
            "amount": [5_000_000, 4_000_000, 200_000, 90_000, 12_000, 0],
            "currency": ["KRW", "KRW", "KRW", "USD", "KRW", "KRW"],
            "device_id": ["d1", "d2", "d3", "d4", "d5", "d6"],
            "payee_account": ["m1", "ok", "ok", None, None, None],
            "label": [1, 0, 0, 1, None, 0],
            "payee.is_new": [True, True, False, None, None, None],
            "score": [90.0, 75.0, 10.0, 95.0, 80.0, float("nan")],
        },
        schema_overrides={"label": pl.Int8, "occurred_at": pl.Datetime("us", "UTC")},
    )


def backtest(text: str, frame: pl.DataFrame | None = None, **filters: Any) -> Any:
    rule = parse_rule(text, FEATURES, LISTS.keys())
    lists = {"mule_accounts": frozenset({"m1"})}
    return run_backtest(
        rule,
        FrameHistory(frame if frame is not None else history_frame()).scan(),
        lists,
        FEATURES,
        **filters,
    )


def test_a_backtest_counts_hits_fraud_and_money() -> None:
    result = backtest("review if score >= 75")
    assert (result.events, result.hits) == (6, 4)  # e1 e2 e4 e5; e6's NaN is missing
    assert (result.fraud_caught, result.false_positives, result.unlabelled_hits) == (2, 1, 1)
    assert result.fraud_total == 2
    assert result.amount_at_stake == 5_000_000 + 4_000_000 + 90_000 + 12_000
    assert result.amount_caught == 5_000_000 + 90_000
    assert result.precision == pytest.approx(2 / 3)
    assert result.recall == 1.0
    assert {c: (a.amount_at_stake, a.amount_caught) for c, a in result.by_currency.items()} == {
        "KRW": (9_012_000, 5_000_000),
        "USD": (90_000, 90_000),
    }
    assert result.missing_columns == []


def test_a_backtest_reads_event_names_from_the_event_columns_and_filters() -> None:
    result = backtest("block if payee.account in @mule_accounts or device.id == 'd3'")
    assert (result.hits, result.fraud_caught, result.false_positives) == (2, 1, 1)
    june = backtest(
        "block if amount > 0",
        kinds=["transfer", "payment"],
        since=datetime(2026, 11, 2, tzinfo=UTC),
        until=datetime(2026, 11, 5, tzinfo=UTC),
    )
    assert (june.events, june.hits, june.fraud_total) == (3, 3, 1)  # e2, e3, e4


def test_a_backtest_reads_names_the_history_lacks_as_missing() -> None:
    result = backtest("block if hours_since_cert_reissue < 24 or payee.is_new")
    assert result.missing_columns == ["hours_since_cert_reissue"]
    assert result.hits == 2  # e1, e2: only payee.is_new can hold
    nothing = backtest("block if amount > 1", pl.DataFrame({"amount": [5]}))
    assert (nothing.hits, nothing.fraud_total, nothing.precision, nothing.recall) == (
        1,
        0,
        None,
        None,
    )
    assert nothing.unlabelled_hits == 1


def test_parquet_history(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    history_frame().write_parquet(path)
    rule = parse_rule("review if score >= 75", FEATURES, ())
    result = run_backtest(rule, ParquetHistory(path).scan(), {}, FEATURES)
    assert (result.hits, result.fraud_caught) == (4, 2)
    with pytest.raises(HistoryUnavailable):
        ParquetHistory(tmp_path / "nothing.parquet").scan()
