"""The rules in force, compiled: an immutable snapshot the engine evaluates events against.

A snapshot is replaced whole when rules or lists change, never edited, so an evaluation
running while rules change sees the old rules or the new ones, not a mix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from haetae.risk.events import EVENT_KINDS
from haetae.risk.rules.compiler import ListLookup, Predicate, Values, to_predicate
from haetae.risk.rules.nodes import Condition, Decision, Rule

log = structlog.get_logger(__name__)

# Hits come most severe first, then by name, so the engine can take the first.
SEVERITY: Mapping[Decision, int] = {"block": 0, "review": 1, "challenge": 2, "allow": 3}


@dataclass(frozen=True, slots=True)
class RuleHit:
    name: str
    version: int
    decision: Decision


@dataclass(frozen=True, slots=True)
class CompiledRule:
    hit: RuleHit  # built once: evaluating allocates nothing per hit
    kinds: frozenset[str] | None  # None: every kind of event
    predicate: Predicate
    condition: Condition  # the parsed rule, for column-wise evaluation (replays)


def compile_rule(
    name: str, version: int, rule: Rule, kinds: Iterable[str] | None = None
) -> CompiledRule:
    """A parsed rule ready to evaluate, for ``kinds`` of events (every kind: None)."""
    return CompiledRule(
        hit=RuleHit(name, version, rule.decision),
        kinds=frozenset(kinds) if kinds is not None else None,
        predicate=to_predicate(rule.condition),
        condition=rule.condition,
    )


class RuleSet:
    def __init__(self, rules: Iterable[CompiledRule], lists: ListLookup, stamp: int = -1) -> None:
        ordered = sorted(rules, key=lambda r: (SEVERITY[r.hit.decision], r.hit.name))
        self.rules: tuple[CompiledRule, ...] = tuple(ordered)
        self.lists = lists
        self.stamp = stamp  # the storage's change counter when this was read; -1: never read
        self._every_kind = tuple(r for r in ordered if r.kinds is None)
        self._by_kind: dict[str, tuple[CompiledRule, ...]] = {
            kind: tuple(r for r in ordered if r.kinds is None or kind in r.kinds)
            for kind in EVENT_KINDS
        }

    def evaluate(self, kind: str, values: Values) -> list[RuleHit]:
        """The rules for this kind of event that hit, most severe first."""
        hits: list[RuleHit] = []
        lists = self.lists
        for rule in self._by_kind.get(kind, self._every_kind):
            try:
                if rule.predicate(values, lists):
                    hits.append(rule.hit)
            except TypeError as error:
                # A value of the wrong type (a feature bug): that rule cannot judge this
                # event; the others still do.
                log.warning("risk_rule_failed", rule=rule.hit.name, error=str(error))
        return hits
