"""Analysts' rules: a small language (``block if amount > 3_000_000 and payee.is_new``),
checked before use, versioned, compiled for online evaluation and for backtests
(docs/rules.md)."""

from haetae.risk.rules.errors import RuleError
from haetae.risk.rules.history import FrameHistory, HistorySource, ParquetHistory
from haetae.risk.rules.names import EVENT_NAMES, ValueType, event_values
from haetae.risk.rules.ruleset import RuleHit, RuleSet
from haetae.risk.rules.service import RuleBook
from haetae.risk.rules.validate import parse_rule

__all__ = [
    "EVENT_NAMES",
    "FrameHistory",
    "HistorySource",
    "ParquetHistory",
    "RuleBook",
    "RuleError",
    "RuleHit",
    "RuleSet",
    "ValueType",
    "event_values",
    "parse_rule",
]
