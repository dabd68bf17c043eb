"""Rows buffered on a session and written with one INSERT per table just before it commits.

For rows nothing reads back inside their own transaction (outbox events, stored decisions):
a transaction with many of them pays for one executemany per table instead of one ORM flush
each, which matters most to the fraud engine's group commit (hundreds of decisions a
transaction; the ORM's unit of work was about half of the CPU per decision).

A writer that needs no ORM session at all buffers into a :class:`RowBuffer` instead and
writes it in a transaction of its own (``Database.write_buffered``: straight through the
driver, ``sqlite_rows`` or ``pg_rows``): the fraud engine's group commit, where SQLAlchemy's
own bookkeeping was most of a one-decision transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_KEY = "buffered_rows"


class RowBuffer:
    """Buffered rows for a Core transaction; like a session, it keeps them in ``info``."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def absorb(self, other: RowBuffer) -> None:
        """Add ``other``'s rows (and its flags, such as the outbox's) to these."""
        for table, rows in other.take().items():
            self.info.setdefault(_KEY, {}).setdefault(table, []).extend(rows)
        self.info.update(other.info)

    def take(self) -> dict[Table, list[dict[str, Any]]]:
        """The rows buffered so far, per table (and forget them)."""
        taken: dict[Table, list[dict[str, Any]]] = self.info.pop(_KEY, {})
        return taken


def buffer_row(session: AsyncSession | RowBuffer, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` when the session commits (dropped if it rolls back).
    Every row of one table must have the same keys."""
    session.info.setdefault(_KEY, {}).setdefault(table, []).append(row)


@event.listens_for(Session, "before_commit")
def _write_buffered_rows(session: Session) -> None:
    buffered: dict[Table, list[dict[str, Any]]] | None = session.info.pop(_KEY, None)
    for table, rows in (buffered or {}).items():
        session.execute(insert(table), rows)


@event.listens_for(Session, "after_rollback")
def _drop_buffered_rows(session: Session) -> None:
    session.info.pop(_KEY, None)
