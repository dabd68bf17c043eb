"""Sending shared reports to the affiliates until each acknowledges.

:meth:`ConsortiumSender.share_in` writes one message per affiliate in the caller's
transaction, so a case and what it shares commit together (or not at all). A worker then
posts due messages and keeps each until the affiliate answers with an acknowledgement
signed by its key; anything else (no answer, an error status, an acknowledgement that does
not verify) is retried with exponential backoff, for as long as it takes, the last error
kept on the message.

Claiming is one ``UPDATE … RETURNING`` that moves the due messages' next attempt a lease
ahead (on PostgreSQL picking rows with ``FOR UPDATE SKIP LOCKED``), so several workers never
post the same message at once; a message whose worker died mid-post is due again when the
lease runs out. Each post signs the message again with the time of sending (same id, same
payload): the receiver refuses messages signed too long ago, and recognises a repeat by its
id, answering it with the acknowledgement it gave first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
import structlog
from pydantic import ValidationError
from sqlalchemy import Table, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from haetae.consortium.envelope import EnvelopeError, Kind, canonical, reseal, seal, verify_ack
from haetae.consortium.models import OutgoingShare
from haetae.consortium.schemas import FraudReportPayload
from haetae.consortium.settings import ConsortiumSettings
from haetae.db.base import new_id
from haetae.db.engine import Database

log = structlog.get_logger(__name__)
_OUTGOING = cast(Table, OutgoingShare.__table__)
_C = _OUTGOING.c
_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: str
    recipient: str
    body: str
    attempts: int  # this one included


@dataclass(frozen=True, slots=True)
class _Result:
    claimed: _Claimed
    body: str  # the envelope as posted (signed anew)
    error: str | None  # None: acknowledged


def to_text(envelope: Mapping[str, Any]) -> str:
    return canonical(envelope).decode("utf-8")


def checked_payload(kind: Kind, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as the affiliates will check it; ValueError if they would refuse it
    (better to fail the sharing case here than to retry a message for ever)."""
    if kind != "fraud_report":
        raise ValueError(f"unknown message kind: {kind!r}")
    try:
        return FraudReportPayload.model_validate(dict(payload)).model_dump(mode="json")
    except ValidationError as error:
        raise ValueError(f"fraud_report payload: {error}") from error


class ConsortiumSender:
    """``transport``: for tests only (an httpx transport to post through)."""

    def __init__(
        self,
        db: Database,
        settings: ConsortiumSettings,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._wake = asyncio.Event()

    # --- writing ----------------------------------------------------------------------

    async def share_in(
        self, session: AsyncSession, *, kind: Kind, payload: Mapping[str, Any]
    ) -> list[str]:
        """Queue one signed message per affiliate in the caller's transaction; returns the
        message ids (none without affiliates). They are sent once that commits."""
        body = checked_payload(kind, payload)
        now = self._clock()
        settings = self._settings
        ids: list[str] = []
        for peer in settings.peers.values():
            message_id = new_id("cm")
            envelope = seal(
                message_id=message_id,
                sender=settings.institution_code,
                recipient=peer.code,
                kind=kind,
                payload=body,
                signed_at=now,
                key=settings.private_key,
            )
            session.add(
                OutgoingShare(
                    id=message_id,
                    recipient=peer.code,
                    body=to_text(envelope),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            ids.append(message_id)
        if ids:
            event.listen(session.sync_session, "after_commit", self._committed, once=True)
        return ids

    async def share_fraud_report(self, session: AsyncSession, payload: dict[str, Any]) -> None:
        """:meth:`share_in` for a ``fraud_report``, in the shape the case service calls."""
        await self.share_in(session, kind="fraud_report", payload=payload)

    def _committed(self, _session: Session) -> None:
        self._wake.set()

    # --- the worker -------------------------------------------------------------------

    async def run_once(self) -> int:
        """Post one batch of due messages; returns how many were attempted."""
        claimed = await self._claim_due()
        if claimed:
            results = await asyncio.gather(*(self._deliver(c) for c in claimed))
            await self._record(results)
        return len(claimed)

    async def run_forever(self, poll_seconds: float) -> None:
        if not self._settings.peers:
            log.info("consortium.no_affiliates")
            return
        while True:
            self._wake.clear()  # a commit from here on wakes the wait below
            try:
                attempted = await self.run_once()
            except Exception as exc:  # keep going; the next round may succeed
                log.error("consortium.send_round_failed", error=repr(exc))
                attempted = 0
            if not attempted:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll_seconds):
                        await self._wake.wait()

    async def drain(self) -> int:
        """Post until nothing is due now (messages waiting for a retry stay waiting)."""
        total = 0
        while (count := await self.run_once()) > 0:
            total += count
        return total

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _claim_due(self) -> list[_Claimed]:
        settings = self._settings
        if not settings.peers:
            return []
        now = self._clock()
        # Messages to an affiliate no longer configured wait until it is again.
        due = (
            (_C.status == "pending")
            & (_C.next_attempt_at <= now)
            & _C.recipient.in_(sorted(settings.peers))
        )
        pick = select(_C.id).where(due).order_by(_C.next_attempt_at).limit(settings.batch)
        if not self._db.is_sqlite:
            # Concurrent workers each take rows the others have not locked; a locked row is
            # checked against ``due`` again in its latest version.
            pick = pick.with_for_update(skip_locked=True)
        async with self._db.transaction() as session:
            rows = await session.execute(
                update(_OUTGOING)
                .where(_C.id.in_(pick.scalar_subquery()))
                .values(next_attempt_at=now + settings.lease, attempts=_C.attempts + 1)
                .returning(_C.id, _C.recipient, _C.body, _C.attempts)
            )
            return [_Claimed(*row) for row in rows]

    async def _deliver(self, claimed: _Claimed) -> _Result:
        settings = self._settings
        peer = settings.peers[claimed.recipient]
        body = claimed.body
        try:
            body = to_text(reseal(json.loads(claimed.body), self._clock(), settings.private_key))
            response = await self._http().post(
                peer.messages_url,
                content=body.encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as error:
            return _Result(claimed, body, f"{type(error).__name__}: {error}")
        except Exception as exc:  # a bug must not stop the other messages
            log.error("consortium.send_crashed", message_id=claimed.id, error=repr(exc))
            return _Result(claimed, body, f"internal error: {exc!r}")
        if response.status_code not in (200, 201):
            return _Result(claimed, body, f"HTTP {response.status_code}: {_reason(response)}")
        try:
            verify_ack(
                response.json(),
                key=peer.public_key,
                peer=peer.code,
                us=settings.institution_code,
                message_id=claimed.id,
            )
        except (ValueError, EnvelopeError) as error:
            return _Result(claimed, body, f"acknowledgement refused: {error}")
        return _Result(claimed, body, None)

    async def _record(self, results: Sequence[_Result]) -> None:
        now = self._clock()
        async with self._db.transaction() as session:
            for result in results:
                claimed = result.claimed
                if result.error is None:
                    await session.execute(
                        update(_OUTGOING)
                        .where(_C.id == claimed.id, _C.status == "pending")
                        .values(
                            status="acknowledged",
                            acknowledged_at=now,
                            last_error=None,
                            body=result.body,
                        )
                    )
                    log.info(
                        "consortium.acknowledged",
                        message_id=claimed.id,
                        recipient=claimed.recipient,
                        attempts=claimed.attempts,
                    )
                    continue
                retry_at = now + self._backoff(claimed.attempts)
                # Only while it is still our claim: after the lease another worker owns it.
                await session.execute(
                    update(_OUTGOING)
                    .where(
                        _C.id == claimed.id,
                        _C.status == "pending",
                        _C.attempts == claimed.attempts,
                    )
                    .values(
                        next_attempt_at=retry_at,
                        last_error=result.error[:_ERROR_CHARS],
                        body=result.body,
                    )
                )
                log.warning(
                    "consortium.send_failed",
                    message_id=claimed.id,
                    recipient=claimed.recipient,
                    attempts=claimed.attempts,
                    retry_at=retry_at.isoformat(),
                    error=result.error[:200],
                )

    def _backoff(self, attempts: int) -> timedelta:
        settings = self._settings
        exponent = min(max(attempts - 1, 0), 30)
        return min(settings.backoff_cap, settings.backoff_base * 2**exponent)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            settings = self._settings
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    settings.timeout_seconds, connect=settings.connect_timeout_seconds
                ),
                transport=self._transport,
                # Links between institutions are direct: no proxy from the environment.
                trust_env=False,
            )
        return self._client


def _reason(response: httpx.Response) -> str:
    """The error code an affiliate's Haetae answered with, or the start of the body."""
    try:
        error = response.json().get("error", {})
        code, field = error.get("code"), error.get("field")
        if code:
            return f"{code} ({field})" if field else str(code)
    except (ValueError, AttributeError):
        pass
    return response.text[:200] or response.reason_phrase
