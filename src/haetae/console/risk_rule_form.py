"""The rules page's form and figures, apart from the routes: what the analyst typed, the
inline errors (a rule's line and column from the rule book, in the catalog's words), and a
backtest's figures as the page shows them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from haetae.catalog import Catalog, Locale, format_money
from haetae.errors import HaetaeError
from haetae.risk.events import EVENT_KINDS
from haetae.risk.rules.backtest import BacktestResult
from haetae.risk.rules.schemas import RULE_NAME
from haetae.risk.rules.service import RuleView

RULE_TEXT_MAX = 10_000  # as the API's RuleIn


@dataclass(frozen=True, slots=True)
class RuleForm:
    """``kinds`` empty: the rule is for every kind."""

    name: str = ""
    text: str = ""
    kinds: tuple[str, ...] = ()

    @classmethod
    def posted(cls, name: str, text: str, kinds: Sequence[str]) -> RuleForm:
        # Browsers send a textarea's line breaks as CRLF; the rule book stores LF.
        return cls(name.strip(), text.replace("\r\n", "\n").strip(), tuple(dict.fromkeys(kinds)))

    @classmethod
    def of(cls, rule: RuleView) -> RuleForm:
        return cls(rule.name, rule.text, tuple(rule.kinds or ()))

    @property
    def kinds_or_all(self) -> list[str] | None:
        return list(self.kinds) or None


@dataclass(frozen=True, slots=True)
class FieldError:
    """``label``: a key of the page's labels, or the message itself (``message``) for an
    error the rule book raised; ``line``/``column`` and the line's text for a rule's."""

    label: str | None = None
    message: str | None = None
    line: int | None = None
    column: int | None = None
    excerpt: str | None = None


@dataclass
class FormErrors:
    fields: dict[str, FieldError] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.fields)


def check(form: RuleForm, *, need_name: bool) -> FormErrors:
    """What the rule book does not check itself: the name, the kinds, the text's size."""
    errors = FormErrors()
    if need_name and not re.fullmatch(RULE_NAME, form.name):
        errors.fields["name"] = FieldError(label="error_name")
    if any(kind not in EVENT_KINDS for kind in form.kinds):
        errors.fields["kinds"] = FieldError(label="error_kinds")
    if not form.text:
        errors.fields["rule"] = FieldError(label="error_rule_empty")
    elif len(form.text) > RULE_TEXT_MAX:
        errors.fields["rule"] = FieldError(label="error_rule_long")
    return errors


def rule_error(error: HaetaeError, text: str, catalog: Catalog, locale: Locale) -> FieldError:
    """A ``rule_invalid`` from the rule book, with the line it points at."""
    line, column = int(error.params["line"]), int(error.params["column"])
    lines = text.split("\n")
    excerpt = lines[line - 1] if 1 <= line <= len(lines) else ""
    rendered = catalog.render_error(error.code, locale, field="rule", params=error.params)
    return FieldError(message=rendered.message, line=line, column=column, excerpt=excerpt)


@dataclass(frozen=True, slots=True)
class Figure:
    label: str  # a key of the page's labels
    value: str


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.1f}%"


def _amounts(result: BacktestResult, caught: bool, locale: Locale) -> str:
    if not result.by_currency:
        return "0"
    return " · ".join(
        format_money(amounts.amount_caught if caught else amounts.amount_at_stake, cur, locale)
        for cur, amounts in result.by_currency.items()
    )


def backtest_figures(result: BacktestResult, locale: Locale, none: str) -> list[Figure]:
    """The figures in the order the page lists them; ``none`` stands for a ratio with
    nothing to divide by."""
    return [
        Figure("bt_events", f"{result.events:,}"),
        Figure("bt_hits", f"{result.hits:,}"),
        Figure("bt_fraud_caught", f"{result.fraud_caught:,} / {result.fraud_total:,}"),
        Figure("bt_false_positives", f"{result.false_positives:,}"),
        Figure("bt_unlabelled", f"{result.unlabelled_hits:,}"),
        Figure("bt_amount_at_stake", _amounts(result, False, locale)),
        Figure("bt_amount_caught", _amounts(result, True, locale)),
        Figure("bt_precision", _percent(result.precision) or none),
        Figure("bt_recall", _percent(result.recall) or none),
    ]
