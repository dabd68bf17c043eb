"""The parsed form of a rule: small immutable nodes, each knowing where it was written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Decision = Literal["allow", "challenge", "review", "block"]
Operator = Literal["<", "<=", ">", ">=", "==", "!="]
Value = int | float | str | bool


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Name:
    path: str  # "amount", "payee.is_new"
    pos: Pos


@dataclass(frozen=True, slots=True)
class Const:
    value: Value
    pos: Pos


Operand = Name | Const


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple[Const, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class NamedList:
    name: str  # without the "@"
    pos: Pos


@dataclass(frozen=True, slots=True)
class Compare:
    op: Operator
    left: Operand
    right: Operand
    pos: Pos  # the operator's


@dataclass(frozen=True, slots=True)
class Member:
    operand: Operand
    collection: ListLiteral | NamedList
    negated: bool  # "not in"


@dataclass(frozen=True, slots=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand
    negated: bool  # "not between"


@dataclass(frozen=True, slots=True)
class Flag:
    """A bare boolean name used as a condition: ``payee.is_new``."""

    name: Name


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition


@dataclass(frozen=True, slots=True)
class And:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    conditions: tuple[Condition, ...]


Condition = Compare | Member | Between | Flag | Not | And | Or


@dataclass(frozen=True, slots=True)
class Rule:
    decision: Decision
    condition: Condition
    text: str


def operands(condition: Condition) -> Iterator[Operand]:
    """Every operand in the condition, in the order written."""
    match condition:
        case Compare(left=left, right=right):
            yield left
            yield right
        case Member(operand=operand):
            yield operand
        case Between(operand=operand, low=low, high=high):
            yield operand
            yield low
            yield high
        case Flag(name=name):
            yield name
        case Not(condition=inner):
            yield from operands(inner)
        case And(conditions=parts) | Or(conditions=parts):
            for part in parts:
                yield from operands(part)


def names(condition: Condition) -> list[str]:
    """The names a condition reads, once each, in the order written."""
    return list(dict.fromkeys(o.path for o in operands(condition) if isinstance(o, Name)))


def list_names(condition: Condition) -> list[str]:
    """The named lists (``@name``) a condition uses, once each."""
    found: dict[str, None] = {}
    stack: list[Condition] = [condition]
    while stack:
        node = stack.pop()
        match node:
            case Member(collection=NamedList(name=name)):
                found[name] = None
            case Not(condition=inner):
                stack.append(inner)
            case And(conditions=parts) | Or(conditions=parts):
                stack.extend(reversed(parts))
    return list(found)
