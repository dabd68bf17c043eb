"""Storing decisions, the review queue, and labels flowing back as training data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, cast

import polars as pl
from sqlalchemy import Select, Table, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.bus.outbox import add_event
from haetae.db.base import new_id
from haetae.db.buffered import RowBuffer, buffer_row
from haetae.db.engine import Database
from haetae.errors import HaetaeError
from haetae.risk.decisions.models import REISSUE_ONLY, DecisionRecord
from haetae.risk.events import conform, empty_events

Label = Literal["fraud", "genuine"]


def label_value(label: str | None) -> int:
    """An analyst's label as the event schema's ``label``: 1 fraud, 0 otherwise."""
    return 1 if label == "fraud" else 0


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """An event row or feature values for a JSON column: datetimes as ISO text."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


_DECISIONS = cast(Table, DecisionRecord.__table__)


def record_decision(
    session: AsyncSession | RowBuffer,
    *,
    event_row: dict[str, Any],
    decision: str,
    score: int,
    reasons: Sequence[dict[str, Any]],
    rule_hits: Sequence[dict[str, Any]],
    model_version: str | None,
    features: dict[str, Any],
    now: datetime,
    decision_id: str | None = None,
) -> str:
    """Store a decision in the caller's transaction (a buffered row: ``db.buffered``);
    returns its id."""
    record_id = decision_id or new_id("rsk")
    kind, customer_id = event_row["kind"], event_row["customer_id"]
    buffer_row(
        session,
        _DECISIONS,
        {
            "id": record_id,
            "event_id": event_row.get("event_id"),
            "kind": kind,
            "customer_id": customer_id,
            "occurred_at": event_row["occurred_at"],
            "decided_at": now,
            "amount": event_row.get("amount") or 0,
            "currency": event_row.get("currency") or "KRW",
            "event": jsonable(event_row),
            "decision": decision,
            "score": score,
            "reasons": list(reasons),
            "rule_hits": list(rule_hits),
            "model_version": model_version,
            "features": jsonable(features),
            "review_status": "open" if decision == "review" else None,
        },
    )
    add_event(
        session,
        "risk.decided",
        {
            "decision_id": record_id,
            "kind": kind,
            "customer_id": customer_id,
            "decision": decision,
            "score": score,
        },
    )
    return record_id


def reissue_lookup(event_id: str) -> Select[str]:
    """The decision of the reissue a ``certificate.reissued`` event reported, through the
    partial index (a test reads the plan). The kind is a literal, as in the index's
    condition: a prepared statement's generic plan (PostgreSQL, once a statement has run a
    few times) cannot prove a parameter matches it."""
    return (
        select(DecisionRecord.id)
        .where(DecisionRecord.event_id == event_id, text(REISSUE_ONLY))
        .limit(1)
    )


class Decisions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, decision_id: str) -> DecisionRecord:
        async with self._db.sessions() as session:
            record = await session.get(DecisionRecord, decision_id)
        if record is None:
            raise HaetaeError("not_found", field="decision_id")
        return record

    async def reissue_decided(self, event_id: str) -> bool:
        """Whether the reissue of this ``certificate.reissued`` event was decided already."""
        async with self._db.sessions() as session:
            found = await session.scalar(reissue_lookup(event_id))
        return found is not None

    async def latest(self, limit: int = 50) -> list[DecisionRecord]:
        async with self._db.sessions() as session:
            return list(
                await session.scalars(
                    select(DecisionRecord)
                    .order_by(DecisionRecord.decided_at.desc(), DecisionRecord.id.desc())
                    .limit(limit)
                )
            )

    async def queue(self, status: str = "open", limit: int = 50) -> list[DecisionRecord]:
        """Decisions waiting for an analyst (oldest first), or those already labelled."""
        order = (
            DecisionRecord.decided_at.asc()
            if status == "open"
            else DecisionRecord.labelled_at.desc()
        )
        async with self._db.sessions() as session:
            return list(
                await session.scalars(
                    select(DecisionRecord)
                    .where(DecisionRecord.review_status == status)
                    .order_by(order, DecisionRecord.id)
                    .limit(limit)
                )
            )

    async def label(
        self, decision_id: str, label: Label, *, by: str, note: str | None, now: datetime
    ) -> DecisionRecord:
        """Any decision may be labelled (a fraud report can label an allowed payment); a
        label may be corrected, the last one counts."""
        async with self._db.transaction() as session:
            result = await session.execute(
                update(DecisionRecord)
                .where(DecisionRecord.id == decision_id)
                .values(
                    label=label,
                    labelled_by=by,
                    labelled_at=now,
                    note=note,
                    review_status="labelled",
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise HaetaeError("not_found", field="decision_id")
            add_event(
                session,
                "risk.labelled",
                {"decision_id": decision_id, "label": label, "by": by},
            )
        return await self.get(decision_id)

    async def labelled_history(self) -> pl.DataFrame:
        """Labelled decisions as events (the event schema, ``label`` set)."""
        return await self._history(only_labelled=True)

    async def training_history(self) -> pl.DataFrame:
        """Every decided event, labelled: the analysts' label where there is one, else
        genuine (0), as fraud not reported is taken to be none. Features are recomputed
        from these events at training time, so the model learns from what it will see."""
        return await self._history(only_labelled=False)

    async def _history(self, *, only_labelled: bool) -> pl.DataFrame:
        query = select(DecisionRecord).order_by(DecisionRecord.occurred_at, DecisionRecord.id)
        if only_labelled:
            query = query.where(DecisionRecord.label.is_not(None))
        async with self._db.sessions() as session:
            records = list(await session.scalars(query))
        rows = [
            {
                **record.event,
                "occurred_at": record.occurred_at,
                "label": label_value(record.label),
                "scenario": "analyst_label" if record.label else None,
            }
            for record in records
        ]
        return conform(pl.DataFrame(rows)) if rows else empty_events()
