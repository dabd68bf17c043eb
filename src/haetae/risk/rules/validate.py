"""Checks a parsed rule against the names and lists that exist: every name known, every
``@list`` defined, every comparison between values of types that can be compared.

The first problem in the order written is reported, at the token at fault.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping

from haetae.risk.rules.errors import RuleError, RuleErrorKind
from haetae.risk.rules.names import EVENT_NAMES, ValueType
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
    Pos,
    Rule,
)
from haetae.risk.rules.parser import parse

_ORDERING = frozenset({"<", "<=", ">", ">="})
_READS_AS: dict[ValueType, str] = {
    "number": "a number",
    "bool": "true/false",
    "string": "text",
}


def parse_rule(text: str, known: Mapping[str, ValueType], lists: Collection[str]) -> Rule:
    """Parse and check ``text``; :class:`RuleError` says what is wrong and where."""
    rule = parse(text)
    check(rule, known, lists)
    return rule


def check(rule: Rule, known: Mapping[str, ValueType], lists: Collection[str]) -> None:
    """``known``: the features' names and types (the event's names are always known);
    ``lists``: the names of the lists defined (without ``@``)."""
    _Checker({**known, **EVENT_NAMES}, lists).condition(rule.condition)


def _show(operand: Operand) -> str:
    if isinstance(operand, Name):
        return f"'{operand.path}'"
    value = operand.value
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _error(kind: RuleErrorKind, message: str, pos: Pos) -> RuleError:
    return RuleError(kind, message, pos.line, pos.column)


class _Checker:
    def __init__(self, known: Mapping[str, ValueType], lists: Collection[str]) -> None:
        self._known = known
        self._lists = lists

    def condition(self, node: Condition) -> None:
        match node:
            case Compare():
                self._compare(node)
            case Member():
                self._member(node)
            case Between():
                self._between(node)
            case Flag(name=name):
                kind = self.type_of(name)
                if kind != "bool":
                    example = f"{name.path} > 0" if kind == "number" else f'{name.path} == "..."'
                    raise _error(
                        "type",
                        f"{_show(name)} is {_READS_AS[kind]}, not true/false: compare it "
                        f"(e.g. {example})",
                        name.pos,
                    )
            case Not(condition=inner):
                self.condition(inner)
            case And(conditions=parts) | Or(conditions=parts):
                for part in parts:
                    self.condition(part)

    def type_of(self, operand: Operand) -> ValueType:
        if isinstance(operand, Const):
            value = operand.value
            if isinstance(value, bool):
                return "bool"
            return "string" if isinstance(value, str) else "number"
        found = self._known.get(operand.path)
        if found is None:
            message = f"unknown name '{operand.path}'"
            close = difflib.get_close_matches(operand.path, list(self._known), n=1, cutoff=0.6)
            if close:
                message += f" (did you mean '{close[0]}'?)"
            raise _error("name", message, operand.pos)
        return found

    def _no_constants_only(self, operands: tuple[Operand, ...]) -> None:
        if all(isinstance(o, Const) for o in operands):
            raise _error(
                "type", "this compares fixed values only; use a name on one side", operands[0].pos
            )

    def _compare(self, node: Compare) -> None:
        left, right = self.type_of(node.left), self.type_of(node.right)
        self._no_constants_only((node.left, node.right))
        if node.op in _ORDERING:
            for operand, kind in ((node.left, left), (node.right, right)):
                if kind != "number":
                    raise _error(
                        "type",
                        f"{node.op} compares numbers, but {_show(operand)} is {_READS_AS[kind]}",
                        operand.pos,
                    )
        elif left != right:
            raise _error(
                "type",
                f"{_show(node.left)} is {_READS_AS[left]} but {_show(node.right)} is "
                f"{_READS_AS[right]}: {node.op} compares values of the same type",
                node.right.pos,
            )

    def _member(self, node: Member) -> None:
        kind = self.type_of(node.operand)
        if isinstance(node.operand, Const):
            raise _error("type", "use a name before 'in'", node.operand.pos)
        if isinstance(node.collection, ListLiteral):
            for item in node.collection.items:
                item_kind = self.type_of(item)
                if item_kind != kind:
                    raise _error(
                        "type",
                        f"{_show(node.operand)} is {_READS_AS[kind]} but this list item is "
                        f"{_READS_AS[item_kind]}",
                        item.pos,
                    )
            return
        self._named_list(node.collection)
        if kind != "string":
            raise _error(
                "type",
                f"@{node.collection.name} holds text but {_show(node.operand)} is "
                f"{_READS_AS[kind]}",
                node.operand.pos,
            )

    def _named_list(self, named: NamedList) -> None:
        if named.name in self._lists:
            return
        message = f"no list named @{named.name}"
        close = difflib.get_close_matches(named.name, list(self._lists), n=1, cutoff=0.6)
        if close:
            message += f" (did you mean @{close[0]}?)"
        else:
            message += f" (create it first: PUT /v1/risk/lists/{named.name})"
        raise _error("list", message, named.pos)

    def _between(self, node: Between) -> None:
        operands = (node.operand, node.low, node.high)
        kinds = [self.type_of(o) for o in operands]
        self._no_constants_only(operands)
        for operand, kind in zip(operands, kinds, strict=True):
            if kind != "number":
                raise _error(
                    "type",
                    f"between compares numbers, but {_show(operand)} is {_READS_AS[kind]}",
                    operand.pos,
                )
