"""One checked rule, two ways to run it: a Python closure for one event online, a Polars
expression for a history of events (backtests). Both are built from the nodes alone; the
text is never evaluated.

Missing values: a comparison (``<``, ``==``, ``in``, ``not in``, ``between``, ...) with a
missing value — a name absent from the event, or ``None``/null — is false, and so is a bare
name that is missing. ``not`` then makes it true: ``not (amount > 5)`` holds for an event
without an amount, ``amount <= 5`` does not. Both compilations follow this, so a backtest
counts exactly the events the online rule would have hit (NaN is not a missing value online;
backtests turn NaN into null, so keep features free of NaN).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from functools import reduce
from typing import Any

import polars as pl

from haetae.risk.rules.nodes import (
    And,
    Between,
    Compare,
    Condition,
    Const,
    Flag,
    ListLiteral,
    Member,
    Name,
    NamedList,
    Not,
    Operand,
    Or,
)

Values = Mapping[str, object]
ListLookup = Mapping[str, AbstractSet[object]]  # a named list's values, by name (no "@")
Predicate = Callable[[Values, ListLookup], bool]
_Getter = Callable[[Values], Any]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_EMPTY: frozenset[object] = frozenset()


# --- online: closures -------------------------------------------------------------------


def to_predicate(condition: Condition) -> Predicate:
    """A function of (the event's values by name, the named lists) that is true when the
    condition holds. Evaluating it allocates nothing and calls one closure per node."""
    match condition:
        case Compare():
            return _compare(condition)
        case Member():
            return _member(condition)
        case Between():
            return _between(condition)
        case Flag(name=Name(path=key)):

            def flag(values: Values, lists: ListLookup) -> bool:
                return bool(values.get(key))

            return flag
        case Not(condition=inner):
            positive = to_predicate(inner)

            def negation(values: Values, lists: ListLookup) -> bool:
                return not positive(values, lists)

            return negation
        case And(conditions=parts):
            return _all(tuple(to_predicate(p) for p in parts))
        case Or(conditions=parts):
            return _any(tuple(to_predicate(p) for p in parts))
    raise TypeError(f"not a condition: {condition!r}")


def _getter(operand: Operand) -> _Getter:
    if isinstance(operand, Name):
        key = operand.path

        def get(values: Values) -> Any:
            return values.get(key)

        return get
    constant = operand.value

    def fixed(values: Values) -> Any:
        return constant

    return fixed


def _compare(node: Compare) -> Predicate:
    test = _OPS[node.op]
    if isinstance(node.left, Name) and isinstance(node.right, Const):
        # The common shape (amount > 3_000_000) gets one dictionary look-up and one test.
        key, constant = node.left.path, node.right.value

        def name_to_constant(values: Values, lists: ListLookup) -> bool:
            value = values.get(key)
            return value is not None and bool(test(value, constant))

        return name_to_constant
    left, right = _getter(node.left), _getter(node.right)

    def general(values: Values, lists: ListLookup) -> bool:
        a, b = left(values), right(values)
        return a is not None and b is not None and bool(test(a, b))

    return general


def _member(node: Member) -> Predicate:
    get, negated = _getter(node.operand), node.negated
    if isinstance(node.collection, ListLiteral):
        items = frozenset(item.value for item in node.collection.items)

        def in_literal(values: Values, lists: ListLookup) -> bool:
            value = get(values)
            return value is not None and (value in items) is not negated

        return in_literal
    name = node.collection.name

    def in_named(values: Values, lists: ListLookup) -> bool:
        value = get(values)
        return value is not None and (value in lists.get(name, _EMPTY)) is not negated

    return in_named


def _between(node: Between) -> Predicate:
    get, low, high, negated = (
        _getter(node.operand),
        _getter(node.low),
        _getter(node.high),
        node.negated,
    )

    def between(values: Values, lists: ListLookup) -> bool:
        value, lo, hi = get(values), low(values), high(values)
        if value is None or lo is None or hi is None:
            return False
        return bool(lo <= value <= hi) is not negated

    return between


def _all(parts: tuple[Predicate, ...]) -> Predicate:
    if len(parts) == 2:
        first, second = parts

        def both(values: Values, lists: ListLookup) -> bool:
            return first(values, lists) and second(values, lists)

        return both

    def every(values: Values, lists: ListLookup) -> bool:
        return all(part(values, lists) for part in parts)

    return every


def _any(parts: tuple[Predicate, ...]) -> Predicate:
    if len(parts) == 2:
        first, second = parts

        def either(values: Values, lists: ListLookup) -> bool:
            return first(values, lists) or second(values, lists)

        return either

    def some(values: Values, lists: ListLookup) -> bool:
        return any(part(values, lists) for part in parts)

    return some


# --- offline: Polars --------------------------------------------------------------------


def to_expr(condition: Condition, lists: ListLookup) -> pl.Expr:
    """A boolean expression, never null, over a frame with one column per name (named as
    in the rule: ``payee.is_new``). Named lists are read from ``lists`` now."""
    match condition:
        case Compare(op=op, left=left, right=right):
            return _OPS[op](_column(left), _column(right)).fill_null(False)
        case Member(operand=operand, collection=collection, negated=negated):
            found = _is_in(_column(operand), collection, lists)
            return (~found if negated else found).fill_null(False)
        case Between(operand=operand, low=low, high=high, negated=negated):
            value, lo, hi = _column(operand), _column(low), _column(high)
            inside = value.is_between(lo, hi, closed="both")
            # is_between is two comparisons joined by "and": with a missing bound and the
            # other comparison false it is false, not null, and "not between" would hold.
            known = value.is_not_null() & lo.is_not_null() & hi.is_not_null()
            return known & (~inside if negated else inside).fill_null(False)
        case Flag(name=Name(path=key)):
            return pl.col(key).cast(pl.Boolean).fill_null(False)
        case Not(condition=inner):
            return ~to_expr(inner, lists)
        case And(conditions=parts):
            return reduce(operator.and_, (to_expr(p, lists) for p in parts))
        case Or(conditions=parts):
            return reduce(operator.or_, (to_expr(p, lists) for p in parts))
    raise TypeError(f"not a condition: {condition!r}")


def _column(operand: Operand) -> pl.Expr:
    return pl.col(operand.path) if isinstance(operand, Name) else pl.lit(operand.value)


def _is_in(column: pl.Expr, collection: ListLiteral | NamedList, lists: ListLookup) -> pl.Expr:
    # Polars wants the column and the set of one type; numbers compare as Float64, as
    # 3 == 3.0 in Python.
    if isinstance(collection, NamedList):
        values: list[Any] = sorted(str(v) for v in lists.get(collection.name, _EMPTY))
        dtype: pl.DataType = pl.String()
    else:
        values = [item.value for item in collection.items]
        if all(isinstance(v, bool) for v in values):
            dtype = pl.Boolean()
        elif all(isinstance(v, str) for v in values):
            dtype = pl.String()
        else:
            dtype, values = pl.Float64(), [float(v) for v in values]
    return column.cast(dtype).is_in(pl.Series(values, dtype=dtype).implode())
