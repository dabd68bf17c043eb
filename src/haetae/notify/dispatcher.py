"""The dispatcher: sends due deliveries, retries with exponential backoff, records every
status change, and falls back from push to SMS.

It works in batches. One statement claims a batch (``queued`` → ``sending``, with the time
as a lease), so two workers never send the same delivery; a claim older than the lease
belongs to a worker that died mid-send and is taken over. A delivery sent twice that way
carries the same delivery id, which receivers use to drop the repeat (HTTP
``Idempotency-Key``, e-mail ``Message-ID``).

The batch is sent concurrently, and results are written as they come in, many to a
transaction (a group commit), so that the database is not the bottleneck; a worker sends
again only once its last result is committed, so a crash repeats at most the sends that
were in flight. A result is only written to a delivery still ``sending``, and a push that
fails for good gets its SMS fallback in the same transaction. See ``_send_batch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.catalog import Locale
from haetae.db.base import new_id, utcnow
from haetae.db.engine import Database
from haetae.notify.channels.base import Channel, ChannelName, DeliveryError, OutgoingMessage
from haetae.notify.models import Customer, Delivery, DeliveryEvent, Notification
from haetae.notify.notices import thaw_context
from haetae.notify.templates import NoticeTemplates, fit_lms, sms_type

log = structlog.get_logger(__name__)
_DELIVERIES = cast(Table, Delivery.__table__)
_EVENTS = cast(Table, DeliveryEvent.__table__)
_NOTIFICATIONS = cast(Table, Notification.__table__)
_COLUMNS = _DELIVERIES.c

# The result writes, built once (a flush runs several times a second under load). Each
# writes only to deliveries still "sending" and says, by RETURNING, which it wrote.
_MARK_SENT = (
    update(_DELIVERIES)
    .where(_COLUMNS.id.in_(bindparam("ids", expanding=True)), _COLUMNS.status == "sending")
    .values(
        status="sent",
        reason=None,
        claimed_at=None,
        # The claim's count + 1: nobody else writes a delivery while it is "sending".
        attempts=_COLUMNS.attempts + 1,
        updated_at=bindparam("now", type_=_COLUMNS.updated_at.type),  # the push ack timer
    )
    .returning(_COLUMNS.id)
)
_MARK_NOT_SENT = (
    update(_DELIVERIES)
    .where(_COLUMNS.id == bindparam("b_id"), _COLUMNS.status == "sending")
    .values(
        status=bindparam("b_status"),
        reason=bindparam("b_reason"),
        claimed_at=None,
        attempts=_COLUMNS.attempts + 1,
        updated_at=bindparam("now", type_=_COLUMNS.updated_at.type),
        # A retry's time; a final failure keeps the time it was last due.
        next_attempt_at=func.coalesce(
            bindparam("b_retry_at", type_=_COLUMNS.next_attempt_at.type),
            _COLUMNS.next_attempt_at,
        ),
    )
    .returning(_COLUMNS.id)
)
_SET_PROVIDER_ID = (
    update(_DELIVERIES)
    .where(_COLUMNS.id == bindparam("b_id"))
    .values(provider_message_id=bindparam("b_provider"))
)
_HISTORY = insert(_EVENTS).from_select(
    ["delivery_id", "status", "reason", "at"],
    select(
        _COLUMNS.id,
        _COLUMNS.status,
        _COLUMNS.reason,
        bindparam("at", type_=_EVENTS.c.at.type),
    ).where(_COLUMNS.id.in_(bindparam("ids", expanding=True))),
)

# The template parts each kind of message needs (an SMS does not pay for the HTML e-mail).
_EMAIL_PARTS = ("title", "long", "html")
_TEXT_PARTS = ("title", "short")


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    # Deliveries claimed at once (what is still unsent when the lease runs out is left
    # for another worker to take over: see _send_batch).
    batch: int = 500
    # Sends in flight at once; also at most what a worker killed mid-batch sends again.
    concurrency: int = 128
    max_attempts: int = 8
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    lease: timedelta = timedelta(seconds=60)
    push_ack_timeout: timedelta = timedelta(seconds=60)
    # Results are written in groups of this many, or after this long since the first one
    # came in (or when no send is left in flight): fewer, larger transactions.
    record_group: int = 64
    record_linger: timedelta = timedelta(milliseconds=20)
    # How often to look for pushes past their acknowledgement time: the look-up reads
    # every sent delivery, too much to do before each batch.
    push_ack_scan_every: timedelta = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class _Claimed:
    """A claimed delivery: what sending it and recording the result need."""

    id: str
    notification_id: str
    channel: str
    address: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class _Notice:
    kind: str
    locale: Locale
    context: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivery: _Claimed
    status: str  # sent | queued (a retry) | failed
    reason: str | None = None
    provider_id: str | None = None
    retry_at: datetime | None = None
    fall_back: bool = False  # a push failed for good: queue its SMS with this result


def _mask(address: str | None) -> str:
    if not address:
        return "-"
    return address[:3] + "***" if len(address) > 6 else "***"


class Dispatcher:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        templates: NoticeTemplates,
        *,
        clock: Callable[[], datetime],
        settings: DispatchSettings = DispatchSettings(),
    ) -> None:
        self._db = db
        self._channels = channels
        self._templates = templates
        self._clock = clock
        self._settings = settings
        self._last_ack_scan: datetime | None = None
        # Bound once, with the logging configured by now: the module's lazy proxy binds
        # anew on every call, which costs more than a filtered-out message.
        self._log = log.bind()

    async def run_once(self) -> int:
        """Send one batch of what is due now; returns how many deliveries were attempted."""
        await self._fall_back_unacknowledged_pushes()
        claimed, notices = await self._claim_due()
        if claimed:
            await self._send_batch(claimed, notices)
        return len(claimed)

    async def run_forever(self, poll_seconds: float) -> None:
        while True:
            try:
                sent = await self.run_once()
            except Exception as exc:  # keep dispatching; the next round may succeed
                log.error("notify.dispatch_failed", error=repr(exc))
                sent = 0
            if not sent:
                await asyncio.sleep(poll_seconds)

    async def drain(self) -> int:
        total = 0
        while (count := await self.run_once()) > 0:
            total += count
        return total

    # --- claiming ---------------------------------------------------------------------

    async def _claim_due(self) -> tuple[list[_Claimed], dict[str, _Notice]]:
        """Claim a batch (one UPDATE … RETURNING per kind of due delivery) and read the
        notifications it needs, in one transaction."""
        now = self._clock()
        columns = _COLUMNS
        # Deliveries whose worker died mid-send first, then the queue in due order. Two
        # statements rather than one with OR: each walks the (status, next_attempt_at)
        # index instead of sorting every due row to find the first ones.
        taken_over = (columns.status == "sending") & (
            columns.claimed_at < now - self._settings.lease
        )
        queued = (columns.status == "queued") & (columns.next_attempt_at <= now)
        claimed: list[_Claimed] = []
        async with self._db.transaction() as session:
            for due, ordered in ((taken_over, False), (queued, True)):
                room = self._settings.batch - len(claimed)
                if room <= 0:
                    break
                pick = select(columns.id).where(due).limit(room)
                if ordered:
                    pick = pick.order_by(columns.next_attempt_at)
                if not self._db.is_sqlite:
                    # Concurrent workers each take rows the others have not locked; a row
                    # locked is checked against ``due`` again in its latest version.
                    pick = pick.with_for_update(skip_locked=True)
                # (On SQLite the writer's transaction is exclusive: what the subquery reads
                # is what gets written. Repeating ``due`` outside it would make SQLite scan
                # every due row instead of looking up the picked ids.)
                rows = await session.execute(
                    update(_DELIVERIES)
                    .where(columns.id.in_(pick.scalar_subquery()))
                    .values(status="sending", claimed_at=now)
                    .returning(
                        columns.id,
                        columns.notification_id,
                        columns.channel,
                        columns.address,
                        columns.attempts,
                    )
                )
                claimed += [_Claimed(*row) for row in rows]
            notices = await self._notices(session, {c.notification_id for c in claimed})
        return claimed, notices

    @staticmethod
    async def _notices(session: AsyncSession, ids: set[str]) -> dict[str, _Notice]:
        if not ids:
            return {}
        columns = _NOTIFICATIONS.c
        rows = await session.execute(
            select(columns.id, columns.kind, columns.locale, columns.context).where(
                columns.id.in_(ids)
            )
        )
        return {
            notification_id: _Notice(
                kind, "en" if locale == "en" else "ko", thaw_context(context or {})
            )
            for notification_id, kind, locale, context in rows
        }

    # --- sending ----------------------------------------------------------------------

    async def _send_batch(
        self, claimed: Sequence[_Claimed], notices: Mapping[str, _Notice]
    ) -> None:
        """Send with ``concurrency`` workers while a recorder writes the results.

        The recorder writes results in groups (a group commit): it waits until
        ``record_group`` results are in, or ``record_linger`` has passed since the first
        one, or no send is left in flight, and then writes them in one transaction. A worker
        waits for the commit that holds its result before it sends again, so
        sent-but-unrecorded deliveries, which a crash would repeat, never exceed
        ``concurrency``. A delivery still unsent when the lease runs out is left alone: from
        then on another worker may take it over, and two would send it at once."""
        loop = asyncio.get_running_loop()
        settings = self._settings
        linger = settings.record_linger.total_seconds()
        lease_ends = loop.time() + settings.lease.total_seconds()
        pending: list[_Outcome] = []
        committed = loop.create_future()  # resolved by the write that takes ``pending``
        arrived = asyncio.Event()
        in_flight = 0
        settled = 0  # recorded, or left for a takeover
        rendered: dict[tuple[str, tuple[str, ...]], dict[str, str | None]] = {}
        queue: Iterator[_Claimed] = iter(claimed)

        async def worker() -> None:
            nonlocal in_flight, settled
            for delivery in queue:
                if loop.time() >= lease_ends:
                    settled += 1  # stays "sending": taken over, then sent, after the lease
                    arrived.set()
                    continue
                in_flight += 1
                outcome = await self._attempt(delivery, notices, rendered)
                in_flight -= 1
                pending.append(outcome)
                arrived.set()
                # Shared by the workers whose results go into the same write. (Cancelled
                # only when the whole batch is.)
                await committed

        def group_ready() -> bool:
            return len(pending) >= settings.record_group or in_flight == 0

        async def recorder() -> None:
            nonlocal committed, settled
            while settled < len(claimed):
                await arrived.wait()
                deadline = loop.time() + linger
                while not group_ready() and (left := deadline - loop.time()) > 0:
                    arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(left):
                            await arrived.wait()
                arrived.clear()
                done, written = pending[:], committed
                pending.clear()
                committed = loop.create_future()
                if done:
                    await self._record(done)
                if not written.done():  # cancelled with the batch
                    written.set_result(None)
                settled += len(done)

        # A failed write (the database gone) stops the batch: what was not recorded stays
        # "sending" and is sent again once the lease runs out.
        async with asyncio.TaskGroup() as group:
            group.create_task(recorder())
            for _ in range(min(settings.concurrency, len(claimed))):
                group.create_task(worker())

    async def _attempt(
        self,
        delivery: _Claimed,
        notices: Mapping[str, _Notice],
        rendered: dict[tuple[str, tuple[str, ...]], dict[str, str | None]],
    ) -> _Outcome:
        channel = self._channels.get(delivery.channel)
        if channel is None:
            return self._failure(delivery, "channel_not_configured", retryable=False)
        notice = notices.get(delivery.notification_id)
        if notice is None:  # the foreign key makes this a bug, not a state to retry
            return self._failure(delivery, "notification_missing", retryable=False)
        try:
            message = self._message(delivery, notice, rendered)
            result = await channel.send(message)
        except DeliveryError as error:
            return self._failure(delivery, error.reason, retryable=error.retryable)
        except Exception as exc:  # a bug in an adapter must not stop the dispatcher
            log.error("notify.send_crashed", delivery_id=delivery.id, error=repr(exc))
            return self._failure(delivery, "internal_error", retryable=True)
        self._log.info(
            "notify.sent",
            delivery_id=delivery.id,
            channel=delivery.channel,
            to=_mask(delivery.address),
        )
        return _Outcome(delivery, "sent", provider_id=result.provider_message_id)

    def _message(
        self,
        delivery: _Claimed,
        notice: _Notice,
        rendered: dict[tuple[str, tuple[str, ...]], dict[str, str | None]],
    ) -> OutgoingMessage:
        channel = cast(ChannelName, delivery.channel)
        wanted = _EMAIL_PARTS if channel == "email" else _TEXT_PARTS
        # Once per notification and batch: a notice's push, SMS and e-mail share the text.
        key = (delivery.notification_id, wanted)
        parts = rendered.get(key)
        if parts is None:
            parts = self._templates.render_parts(notice.kind, notice.locale, notice.context, wanted)
            rendered[key] = parts
        title = parts["title"] or ""
        if channel == "email":
            return OutgoingMessage(
                delivery.id,
                channel,
                delivery.address or "",
                title,
                parts["long"] or "",
                html=parts["html"] or "",
            )
        short = parts["short"] or ""
        # SMS text is capped at the LMS maximum (2,000 bytes): customer-supplied values in a
        # notice (a device name, a case id) must not make it unsendable.
        text = fit_lms(short) if channel == "sms" else short
        return OutgoingMessage(
            delivery.id,
            channel,
            delivery.address or "",
            title,
            text,
            sms_type=sms_type(text) if channel == "sms" else None,
        )

    def _failure(self, delivery: _Claimed, reason: str, *, retryable: bool) -> _Outcome:
        attempts = delivery.attempts + 1
        if retryable and attempts < self._settings.max_attempts:
            delay = min(
                self._settings.backoff_cap_seconds,
                self._settings.backoff_base_seconds * 2 ** (attempts - 1),
            ) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
            retry_at = self._clock() + timedelta(seconds=delay)
            return _Outcome(delivery, "queued", reason, retry_at=retry_at)
        return _Outcome(delivery, "failed", reason, fall_back=delivery.channel == "push")

    # --- recording --------------------------------------------------------------------

    async def _record(self, outcomes: Sequence[_Outcome]) -> None:
        """Write many results in one transaction: each only to a delivery still
        ``sending`` (another worker may have taken it over and finished it), with its
        status history row, and the SMS fallback of a push that failed for good."""
        now = self._clock()
        async with self._db.transaction() as session:
            written: list[str] = []
            sent = [o.delivery.id for o in outcomes if o.status == "sent"]
            if sent:
                rows = await session.execute(_MARK_SENT, {"ids": sent, "now": now})
                written += rows.scalars().all()
            for outcome in outcomes:
                if outcome.status == "sent":
                    continue
                row = await session.execute(
                    _MARK_NOT_SENT,
                    {
                        "b_id": outcome.delivery.id,
                        "b_status": outcome.status,
                        "b_reason": _clip(outcome.reason),
                        "now": now,
                        "b_retry_at": outcome.retry_at,
                    },
                )
                written += row.scalars().all()
            if len(written) < len(outcomes):
                log.info("notify.results_superseded", count=len(outcomes) - len(written))
            if not written:
                return
            done = set(written)
            provider_ids = [
                {"b_id": o.delivery.id, "b_provider": _clip(o.provider_id)}
                for o in outcomes
                if o.provider_id and o.delivery.id in done
            ]
            if provider_ids:
                await session.execute(_SET_PROVIDER_ID, provider_ids)
            # The history rows copy the status and reason just written.
            await session.execute(_HISTORY, {"ids": written, "at": utcnow()})
            for outcome in outcomes:
                if outcome.fall_back and outcome.delivery.id in done:
                    await self._queue_sms_fallback(
                        session, outcome.delivery.id, outcome.delivery.notification_id, now
                    )

    # --- push → SMS ---------------------------------------------------------------------

    async def _fall_back_unacknowledged_pushes(self) -> None:
        now = self._clock()
        last = self._last_ack_scan
        if last is not None and last <= now < last + self._settings.push_ack_scan_every:
            return
        self._last_ack_scan = now
        cutoff = now - self._settings.push_ack_timeout
        async with self._db.sessions() as session:
            stale = list(
                (
                    await session.scalars(
                        select(Delivery.id).where(
                            Delivery.channel == "push",
                            Delivery.status == "sent",
                            Delivery.updated_at < cutoff,
                        )
                    )
                ).all()
            )
        for push_id in stale:
            async with self._db.transaction() as session:
                push = await session.get(Delivery, push_id, with_for_update=True)
                if push is None or push.status != "sent":
                    continue  # acknowledged (or handled by another worker) meanwhile
                push.status, push.reason = "failed", "not_acknowledged"
                session.add(DeliveryEvent(delivery_id=push.id, status="failed", reason=push.reason))
                await self._queue_sms_fallback(session, push.id, push.notification_id, now)

    async def _queue_sms_fallback(
        self, session: AsyncSession, push_id: str, notification_id: str, now: datetime
    ) -> None:
        """Queue the SMS that replaces a failed push, once, in the caller's transaction."""
        existing = await session.scalar(select(Delivery.id).where(Delivery.fallback_of == push_id))
        if existing is not None:
            return
        notification = await session.get(Notification, notification_id)
        if notification is None:
            return
        customer = await session.get(Customer, notification.customer_id)
        phone = customer.phone if customer else None
        sms = Delivery(
            id=new_id("dlv"),
            notification_id=notification_id,
            channel="sms",
            address=phone,
            status="queued" if phone else "suppressed",
            reason=None if phone else "no_address",
            attempts=0,
            next_attempt_at=now,
            fallback_of=push_id,
            created_at=now,
        )
        session.add(sms)
        session.add(DeliveryEvent(delivery_id=sms.id, status=sms.status, reason=sms.reason))


def _clip(text: str | None) -> str | None:
    """To the reason and provider id columns' width (200)."""
    return text[:200] if text else None
