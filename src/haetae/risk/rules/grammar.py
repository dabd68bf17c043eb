"""The rule language's grammar (Lark, LALR(1)) and how its terminals read in error messages.

A rule is ``<decision> if <condition>``. Keywords are lower case; whitespace and newlines
are free; ``#`` starts a comment that runs to the end of the line. ``not`` binds tighter
than ``and``, which binds tighter than ``or``. The language has no calls, no attribute
access beyond dotted names and no arithmetic, so there is nothing to evaluate but
comparisons of named values with constants (docs/rules.md).
"""

from __future__ import annotations

from functools import cache

from lark import Lark

GRAMMAR = r"""
start: decision IF disjunction

decision: ALLOW | CHALLENGE | REVIEW | BLOCK

?disjunction: conjunction (OR conjunction)*
?conjunction: negation (AND negation)*
?negation: NOT negation                      -> negate
         | primary
?primary: comparison
        | NAME                               -> flag
        | LPAR disjunction RPAR              -> group

comparison: operand comp_op operand                      -> compare
          | operand IN collection                         -> member
          | operand NOT IN collection                     -> not_member
          | operand BETWEEN operand AND operand           -> between
          | operand NOT BETWEEN operand AND operand       -> not_between

operand: NAME | NUMBER | STRING | TRUE | FALSE
comp_op: LT | LE | GT | GE | EQ | NE
collection: LSQB constant (COMMA constant)* COMMA? RSQB  -> literal_list
          | LIST_NAME                                     -> named_list
constant: NUMBER | STRING | TRUE | FALSE

ALLOW: "allow"
CHALLENGE: "challenge"
REVIEW: "review"
BLOCK: "block"
IF: "if"
AND: "and"
OR: "or"
NOT: "not"
IN: "in"
BETWEEN: "between"
TRUE: "true"
FALSE: "false"
LT: "<"
LE: "<="
GT: ">"
GE: ">="
EQ: "=="
NE: "!="
LPAR: "("
RPAR: ")"
LSQB: "["
RSQB: "]"
COMMA: ","
NAME: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/
LIST_NAME: /@[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /-?[0-9]+(_[0-9]+)*(\.[0-9]+(_[0-9]+)*)?/
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/
COMMENT: /#[^\n]*/

%ignore COMMENT
%ignore /[ \t\r\n\f]+/
"""

# How each terminal reads in "expected ..." messages.
DESCRIPTIONS: dict[str, str] = {
    "ALLOW": "allow",
    "CHALLENGE": "challenge",
    "REVIEW": "review",
    "BLOCK": "block",
    "IF": "'if'",
    "AND": "'and'",
    "OR": "'or'",
    "NOT": "'not'",
    "IN": "'in'",
    "BETWEEN": "'between'",
    "TRUE": "true",
    "FALSE": "false",
    "LT": "a comparison (<, <=, >, >=, ==, !=)",
    "LE": "a comparison (<, <=, >, >=, ==, !=)",
    "GT": "a comparison (<, <=, >, >=, ==, !=)",
    "GE": "a comparison (<, <=, >, >=, ==, !=)",
    "EQ": "a comparison (<, <=, >, >=, ==, !=)",
    "NE": "a comparison (<, <=, >, >=, ==, !=)",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "a list ('[')",
    "RSQB": "']'",
    "COMMA": "','",
    "NAME": "a name",
    "LIST_NAME": "a named list (@name)",
    "NUMBER": "a number",
    "STRING": "a string",
    "$END": "the end of the rule",
}
KEYWORDS: dict[str, str] = {
    "ALLOW": "allow",
    "CHALLENGE": "challenge",
    "REVIEW": "review",
    "BLOCK": "block",
    "IF": "if",
    "AND": "and",
    "OR": "or",
    "NOT": "not",
    "IN": "in",
    "BETWEEN": "between",
    "TRUE": "true",
    "FALSE": "false",
}


@cache
def rule_parser() -> Lark:
    """Built once: LALR tables are computed at construction (a few milliseconds)."""
    return Lark(GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)
