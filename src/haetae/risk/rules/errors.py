"""What is wrong with a rule's text, and where."""

from __future__ import annotations

from typing import Literal

RuleErrorKind = Literal["syntax", "name", "type", "list"]


class RuleError(ValueError):
    """A rule that cannot be used: ``line`` and ``column`` (both from 1) point at the token
    at fault, or just past the last one when the rule ends too early."""

    def __init__(self, kind: RuleErrorKind, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.kind: RuleErrorKind = kind
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"
