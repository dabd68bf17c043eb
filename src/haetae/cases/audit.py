"""The case audit trail as a hash chain: each entry's hash covers the previous entry's hash
and its own content, so an entry changed, removed or reordered afterwards breaks the chain
from that point on (:func:`verify`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.cases.models import CaseEvent

GENESIS = "0" * 64


def entry_hash(
    prev_hash: str, seq: int, at: datetime, actor: str, type_: str, detail: Mapping[str, Any]
) -> str:
    content = json.dumps(
        [prev_hash, seq, at.isoformat(), actor, type_, detail],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(content.encode()).hexdigest()


async def append(
    session: AsyncSession,
    case_id: str,
    *,
    actor: str,
    type_: str,
    detail: Mapping[str, Any],
    at: datetime,
) -> CaseEvent:
    """Add one entry; the caller holds the case row locked, so entries never interleave.

    The chain's head is read once per case and transaction, then kept in ``session.info``:
    a report writes several entries in one transaction, and each read would flush and query.
    The entries are flushed with the transaction's other work."""
    heads: dict[str, tuple[int, str]] = session.info.setdefault("audit_heads", {})
    head = heads.get(case_id)
    if head is None:
        last = (
            await session.execute(
                select(CaseEvent.seq, CaseEvent.hash)
                .where(CaseEvent.case_id == case_id)
                .order_by(CaseEvent.seq.desc())
                .limit(1)
            )
        ).first()
        head = (last[0], last[1]) if last else (0, GENESIS)
    seq, prev = head[0] + 1, head[1]
    frozen = json.loads(json.dumps(dict(detail), default=str))  # what the JSON column keeps
    entry = CaseEvent(
        case_id=case_id,
        seq=seq,
        at=at,
        actor=actor,
        type=type_,
        detail=frozen,
        prev_hash=prev,
        hash=entry_hash(prev, seq, at, actor, type_, frozen),
    )
    session.add(entry)
    heads[case_id] = (seq, entry.hash)
    return entry


def verify(entries: Sequence[CaseEvent]) -> int | None:
    """The seq of the first entry that breaks the chain, or None when it is intact."""
    prev = GENESIS
    for expected_seq, entry in enumerate(sorted(entries, key=lambda e: e.seq), start=1):
        recomputed = entry_hash(prev, entry.seq, entry.at, entry.actor, entry.type, entry.detail)
        if entry.seq != expected_seq or entry.prev_hash != prev or entry.hash != recomputed:
            return entry.seq
        prev = entry.hash
    return None


async def count(session: AsyncSession, case_id: str) -> int:
    return int(await session.scalar(select(func.count()).where(CaseEvent.case_id == case_id)) or 0)
