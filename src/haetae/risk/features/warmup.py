"""Rebuilding the in-process feature store from the stored decisions at start-up.

The in-process store (the embedded default) keeps its windows in memory, so a restart would
otherwise make every card, device and payee look new and every velocity zero until the
windows filled again: the hours right after a deployment would be scored blind. Every
decision is stored with the event row it was scored on, so replaying them in time order
rebuilds the history, and the analysts' labels on them are applied as they were learnt.

A payment is scored before the issuer answers, so its stored event has no outcome; the
replay reads the answer from the payment itself (the decision's event id is the payment's
id), as the store heard it then: approved, declined, or neither (failed, abandoned).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_

from haetae.db.engine import Database
from haetae.payments.models import Payment
from haetae.risk.decisions.models import DecisionRecord
from haetae.risk.decisions.service import label_value
from haetae.risk.features.online import FeatureStore

CHUNK = 5_000
# A payment's status as the outcome the store was told (``RiskDecision.observe``).
_OUTCOMES = {"approved": True, "declined": False}


@dataclass(frozen=True)
class Replayed:
    events: int
    labels: int
    seconds: float


def event_row(stored: dict[str, Any], occurred_at: datetime) -> dict[str, Any]:
    """A decision's stored event (JSON, times as text) as the feature store's row, with the
    decision's ``occurred_at`` column as its time."""
    return {**stored, "occurred_at": occurred_at}


async def replay_decisions(db: Database, store: FeatureStore, *, since: datetime) -> Replayed:
    """Feed every decision since ``since`` to ``store``, oldest first, in chunks (keyset
    pages, so memory stays flat however long the history)."""
    started = time.perf_counter()
    d = DecisionRecord
    events = labels = 0
    after: tuple[datetime, str] | None = None
    while True:
        query = (
            select(d.occurred_at, d.id, d.event, d.label, Payment.status)
            .outerjoin(Payment, (d.kind == "payment") & (Payment.id == d.event_id))
            .where(d.occurred_at >= since)
            .order_by(d.occurred_at, d.id)
            .limit(CHUNK)
        )
        if after is not None:
            query = query.where(tuple_(d.occurred_at, d.id) > tuple_(*after))
        async with db.sessions() as session:
            page = (await session.execute(query)).all()
        for occurred_at, _, stored, label, payment_status in page:
            row = event_row(stored, occurred_at)
            if payment_status is not None and row.get("approved") is None:
                row["approved"] = _OUTCOMES.get(payment_status)
            store.update(row)
            if label is not None:
                store.record_label(row, label_value(label))
                labels += 1
        events += len(page)
        if len(page) < CHUNK:
            return Replayed(events, labels, time.perf_counter() - started)
        after = (page[-1][0], page[-1][1])
