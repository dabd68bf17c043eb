"""Replay a history through the fraud engine in batch: the decision each event would get.

What a bank asks before it switches on a new model or a new set of rules: over last month's
events, what would they have decided? The online engine answers one event at a time (about
4,000 a second on one core, bench/RESULTS.md); a replay computes the same decisions column
by column, so a month of a bank's events takes seconds:

- the features by the offline computation (``risk.features.offline``), which a parity test
  holds equal to the online store's for a stream replayed from empty;
- the model over every row in one LightGBM call (``Scorer.score_matrix``);
- each rule as a Polars expression (``rules.compiler.to_expr``, the backtest's);
- the most severe hit decides, ``allow`` when none does, as online.

The result is the engine's answer for each event as if the stream had been sent to
``POST /v1/risk/evaluate`` in order, from an empty feature store: decision, score, the
rules that hit (most severe first) and the codes of the top reasons. Nothing is stored:
a replay is an analysis, not a decision on a live event.
"""

from __future__ import annotations

import polars as pl
import polars.selectors as cs

from haetae.risk.features.definitions import FEATURES, Feature
from haetae.risk.features.offline import OfflineFeatures
from haetae.risk.model.scorer import Scorer
from haetae.risk.model.train import matrix
from haetae.risk.rules.backtest import name_columns
from haetae.risk.rules.compiler import to_expr
from haetae.risk.rules.nodes import names
from haetae.risk.rules.ruleset import SEVERITY, CompiledRule, RuleSet

# Output columns; "@" cannot start a name in a rule, so the working ones never collide.
DECISION, SCORE, RULE_HITS, REASONS = "decision", "score", "rule_hits", "reasons"
_HIT, _KIND = "@hit:", "@kind"


def replay(
    events: pl.DataFrame,
    *,
    scorer: Scorer | None,
    rules: RuleSet,
    features: tuple[Feature, ...] = FEATURES,
) -> pl.DataFrame:
    """``events`` (columns of ``risk.events.EVENT_SCHEMA``) in stream order, with their
    features and ``score``, ``decision``, ``rule_hits`` and ``reasons``."""
    frame = OfflineFeatures(features).compute(events)
    if scorer is not None:
        scored = scorer.score_matrix(matrix(frame, scorer.feature_names))
        frame = frame.with_columns(
            pl.Series(SCORE, scored.scores, dtype=pl.Int64),
            scored.reasons.alias(REASONS),
        )
    else:
        frame = frame.with_columns(
            pl.lit(0, dtype=pl.Int64).alias(SCORE),
            pl.lit([], dtype=pl.List(pl.String)).alias(REASONS),
        )
    hits = [(rule, f"{_HIT}{rule.hit.name}") for rule in rules.rules]  # most severe first
    judged = _rule_columns(frame, rules).select(
        _hit_expr(rule, rules).alias(column) for rule, column in hits
    )
    return (
        frame.hstack(judged)
        .with_columns(_decision(hits).alias(DECISION), _hit_names(hits).alias(RULE_HITS))
        .drop(column for _, column in hits)
    )


def _rule_columns(frame: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """One column per name the rules use and the event's kind, read as the backtest reads
    them: NaN as null (online a missing value is None, which no comparison holds for)."""
    used = sorted({name for rule in rules.rules for name in names(rule.condition)})
    columns, _ = name_columns(used, set(frame.columns), {})
    return frame.select(*columns, pl.col("kind").alias(_KIND)).with_columns(
        cs.float().fill_nan(None)
    )


def _hit_expr(rule: CompiledRule, rules: RuleSet) -> pl.Expr:
    condition = to_expr(rule.condition, rules.lists)
    if rule.kinds is None:
        return condition
    return condition & pl.col(_KIND).is_in(sorted(rule.kinds))


def _decision(hits: list[tuple[CompiledRule, str]]) -> pl.Expr:
    """The most severe decision among the hits, ``allow`` without any."""
    decision: pl.Expr = pl.lit("allow")
    for severity in sorted(SEVERITY, key=SEVERITY.__getitem__, reverse=True):  # least first
        columns = [column for rule, column in hits if rule.hit.decision == severity]
        if columns:
            decision = (
                pl.when(pl.any_horizontal(columns)).then(pl.lit(severity)).otherwise(decision)
            )
    return decision


def _hit_names(hits: list[tuple[CompiledRule, str]]) -> pl.Expr:
    if not hits:
        return pl.lit([], dtype=pl.List(pl.String))
    return pl.concat_list(
        pl.when(pl.col(column)).then(pl.lit(rule.hit.name)).otherwise(None) for rule, column in hits
    ).list.drop_nulls()
