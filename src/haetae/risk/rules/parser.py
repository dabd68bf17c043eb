"""Rule text to nodes (:mod:`haetae.risk.rules.nodes`), with syntax errors that say where.

Parsing only checks the shape; :func:`haetae.risk.rules.validate.check` then checks names,
lists and types. Nothing in the text is ever evaluated as Python.
"""

from __future__ import annotations

import difflib
from typing import Any, cast

from lark import Token, Transformer, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from haetae.risk.rules.errors import RuleError
from haetae.risk.rules.grammar import DESCRIPTIONS, KEYWORDS, rule_parser
from haetae.risk.rules.nodes import (
    And,
    Between,
    Compare,
    Condition,
    Const,
    Decision,
    Flag,
    ListLiteral,
    Member,
    Name,
    NamedList,
    Not,
    Operand,
    Operator,
    Or,
    Pos,
    Rule,
    Value,
)

# Parse-tree levels; a person writes a handful. The bound keeps the recursive passes that
# follow (building, checking, compiling) far from Python's recursion limit.
MAX_DEPTH = 100
_DECISIONS = frozenset({"ALLOW", "CHALLENGE", "REVIEW", "BLOCK"})
_CHARACTER_HINTS = {
    "=": "write == to compare",
    "&": "write 'and'",
    "|": "write 'or'",
    "!": "write 'not', or != for 'not equal'",
    '"': "a string ends with the same quote on the same line",
    "'": "a string ends with the same quote on the same line",
}
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}


def parse(text: str) -> Rule:
    """The rule written in ``text``; :class:`RuleError` if it is not well formed."""
    try:
        tree = rule_parser().parse(text)
    except UnexpectedToken as error:
        raise _unexpected_token(error) from None
    except UnexpectedCharacters as error:
        raise _unexpected_character(error) from None
    except UnexpectedInput as error:  # pragma: no cover - LALR reports the two above
        raise RuleError("syntax", "the rule is not well formed", error.line, error.column) from None
    _check_depth(tree)
    try:
        return _Build(text).transform(tree)
    except VisitError as error:  # Lark wraps what the callbacks raise
        if isinstance(error.orig_exc, RuleError):
            raise error.orig_exc from None
        raise


def _pos(token: Token) -> Pos:
    return Pos(token.line or 1, token.column or 1)


def _expected(names: set[str]) -> list[str]:
    return list(dict.fromkeys(d for t, d in DESCRIPTIONS.items() if t in names))


def _unexpected_token(error: UnexpectedToken) -> RuleError:
    token = error.token
    expected = set(error.expected)
    if token.type == "$END":
        # Lark gives the end the last token's position; what was missing goes after it.
        line, column = token.end_line or 1, token.end_column or 1
        found = ""
    else:
        line, column = token.line or 1, token.column or 1
        found = repr(str(token))
    if expected <= _DECISIONS:
        starts = "a rule starts with allow, challenge, review or block, then 'if' and a condition"
        message = f"the rule is empty: {starts}" if token.type == "$END" else f"{found}: {starts}"
    elif token.type == "$END":
        message = f"the rule ends too early; expected {_either(_expected(expected))}"
    else:
        message = f"unexpected {found}; expected {_either(_expected(expected))}"
    if token.type == "NAME":
        keywords = [KEYWORDS[t] for t in expected if t in KEYWORDS]
        close = difflib.get_close_matches(str(token), keywords, n=1, cutoff=0.6)
        if close:
            message += f" (did you mean '{close[0]}'?)"
    return RuleError("syntax", message, line, column)


def _either(things: list[str]) -> str:
    if len(things) <= 2:
        return " or ".join(things)
    return ", ".join(things[:-1]) + " or " + things[-1]


def _unexpected_character(error: UnexpectedCharacters) -> RuleError:
    message = f"unexpected character {error.char!r}"
    hint = _CHARACTER_HINTS.get(error.char)
    if hint:
        message += f" ({hint})"
    return RuleError("syntax", message, error.line, error.column)


def _check_depth(tree: Tree[Token]) -> None:
    stack: list[tuple[Tree[Token], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            first = next(node.scan_values(lambda v: isinstance(v, Token)))
            line, column = first.line or 1, first.column or 1
            raise RuleError("syntax", "the rule nests too deeply", line, column)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def _const(token: Token) -> Const:
    value: Value
    if token.type == "NUMBER":
        digits = token.replace("_", "")
        value = float(digits) if "." in digits else int(digits)
    elif token.type == "STRING":
        value = _unquote(token)
    else:
        value = token.type == "TRUE"
    return Const(value, _pos(token))


def _unquote(token: Token) -> str:
    body, out, i = str(token)[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            escaped = body[i + 1]  # the grammar guarantees a character follows
            if escaped not in _ESCAPES:
                column = (token.column or 1) + 1 + i
                raise RuleError(
                    "syntax",
                    f"unknown escape '\\{escaped}' (use \\\\, \\\", \\', \\n or \\t)",
                    token.line or 1,
                    column,
                )
            out.append(_ESCAPES[escaped])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


class _Build(Transformer[Token, Rule]):
    """Lark's tree to nodes; each method gets its rule's children, already built."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def start(self, items: list[Any]) -> Rule:
        decision, _if, condition = items
        return Rule(decision=decision, condition=condition, text=self._text)

    def decision(self, items: list[Token]) -> Decision:
        return cast(Decision, str(items[0]))

    def disjunction(self, items: list[Any]) -> Condition:
        return Or(tuple(i for i in items if not isinstance(i, Token)))

    def conjunction(self, items: list[Any]) -> Condition:
        return And(tuple(i for i in items if not isinstance(i, Token)))

    def negate(self, items: list[Any]) -> Condition:
        return Not(items[1])

    def group(self, items: list[Any]) -> Condition:
        return cast(Condition, items[1])

    def flag(self, items: list[Token]) -> Condition:
        return Flag(Name(str(items[0]), _pos(items[0])))

    def compare(self, items: list[Any]) -> Condition:
        left, op, right = items
        return Compare(cast(Operator, str(op)), left, right, _pos(op))

    def member(self, items: list[Any]) -> Condition:
        return Member(items[0], items[-1], negated=False)

    def not_member(self, items: list[Any]) -> Condition:
        return Member(items[0], items[-1], negated=True)

    def between(self, items: list[Any]) -> Condition:
        return Between(items[0], items[2], items[4], negated=False)

    def not_between(self, items: list[Any]) -> Condition:
        return Between(items[0], items[3], items[5], negated=True)

    def operand(self, items: list[Token]) -> Operand:
        token = items[0]
        return Name(str(token), _pos(token)) if token.type == "NAME" else _const(token)

    def constant(self, items: list[Token]) -> Const:
        return _const(items[0])

    def comp_op(self, items: list[Token]) -> Token:
        return items[0]

    def literal_list(self, items: list[Any]) -> ListLiteral:
        return ListLiteral(tuple(i for i in items if isinstance(i, Const)), _pos(items[0]))

    def named_list(self, items: list[Token]) -> NamedList:
        return NamedList(str(items[0])[1:], _pos(items[0]))
