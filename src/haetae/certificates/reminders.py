"""The durable reminder schedule: planning rows, and sending those that fall due.

Due reminders live in ``certificate_reminders``. Sending one is a single transaction that
writes the notice (which the dispatcher then delivers) and marks the reminder ``sent``, so a
crash either leaves it pending or sent, never half-done; after downtime the next run finds
every reminder that fell due meanwhile. Two workers never send the same reminder: rows are
locked as they are read (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer),
and each is marked only while still ``pending``.

When several reminders of one expiry are due at once (the platform was down over D-7 and
D-1), only the latest is sent and the others are skipped as ``superseded``: a customer with
one day left should hear "tomorrow", once, not "in 7 days" as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import String, Table, exists, func, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.catalog import Locale
from haetae.certificates import schedule
from haetae.certificates.models import Certificate, CertificateReminder
from haetae.certificates.settings import CertificateSettings
from haetae.db.base import UtcDateTime
from haetae.db.engine import Database
from haetae.notify.notices import send_notice
from haetae.notify.templates import NoticeTemplates

log = structlog.get_logger(__name__)
_REMINDERS = cast(Table, CertificateReminder.__table__)
_CERTIFICATES = cast(Table, Certificate.__table__)


def _insert_ignoring_duplicates(session: AsyncSession) -> Any:
    """Planning twice (two importers, a retry) must not fail on rows already planned."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return postgresql.insert(_REMINDERS).on_conflict_do_nothing()
    return sqlite.insert(_REMINDERS).on_conflict_do_nothing()


async def plan_for(
    session: AsyncSession,
    settings: CertificateSettings,
    certificates: Sequence[tuple[str, datetime]],
    now: datetime,
) -> int:
    """Plan the reminders of ``(certificate id, expiry)`` pairs; returns rows planned."""
    return await _plan(session, settings, [(c, expiry, expiry) for c, expiry in certificates], now)


_SQLITE_INSERT = (
    "INSERT INTO certificate_reminders (certificate_id, not_after, days_before, due_at, status)"
    " VALUES (?, ?, ?, ?, 'pending') ON CONFLICT DO NOTHING"
)


async def _plan(
    session: AsyncSession,
    settings: CertificateSettings,
    certificates: Sequence[tuple[str, datetime, Any]],
    now: datetime,
) -> int:
    """Plan ``(certificate id, expiry, expiry as the driver takes it)`` triples.

    On SQLite the rows go through the driver's executemany: planning a million
    certificates is four million rows, and SQLAlchemy's per-value conversion of the two
    datetimes was over half the time. The expiry comes as the text already stored in
    ``certificates`` when the caller read it so (``plan_missing``); each distinct due time is
    converted once, with the column type's own bind processor, so the stored text is exactly
    what the ORM writes.
    """
    days, hour = settings.reminder_days, settings.reminder_hour
    due_times = schedule.due_times
    if session.bind is None or session.bind.dialect.name != "sqlite":
        rows = [
            {
                "certificate_id": certificate_id,
                "not_after": not_after,
                "days_before": days_before,
                "due_at": due_at,
                "status": "pending",
            }
            for certificate_id, not_after, _ in certificates
            for due_at, days_before in due_times(not_after, now, days, hour)
        ]
        if rows:
            await session.execute(_insert_ignoring_duplicates(session), rows)
        return len(rows)
    connection = await session.connection()
    dialect = connection.dialect
    to_db = _REMINDERS.c.due_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert to_db is not None
    texts: dict[datetime, Any] = {}
    values: list[tuple[str, Any, int, Any]] = []
    for certificate_id, not_after, stored in certificates:
        if isinstance(stored, datetime):
            stored = to_db(stored)
        for due_at, days_before in due_times(not_after, now, days, hour):
            text = texts.get(due_at)
            if text is None:
                text = texts[due_at] = to_db(due_at)
            values.append((certificate_id, stored, days_before, text))
    if values:
        await connection.exec_driver_sql(_SQLITE_INSERT, values)
    return len(values)


async def skip_pending(
    session: AsyncSession, certificate_id: str, now: datetime, *, reason: str
) -> None:
    await session.execute(
        update(_REMINDERS)
        .where(_REMINDERS.c.certificate_id == certificate_id, _REMINDERS.c.status == "pending")
        .values(status="skipped", reason=reason, done_at=now)
    )


async def plan_missing(
    db: Database,
    settings: CertificateSettings,
    now: datetime,
    *,
    batch: int = 20_000,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Plan reminders for every live certificate that has none for its current expiry
    (after a bulk load or a change of the reminder days); returns rows planned.

    Pages through certificates by id, one transaction per page, so a large run neither
    holds the writer lock for long nor starts over from nothing if interrupted.
    """
    certificates = _CERTIFICATES.c
    reminders = _REMINDERS.c
    planned_already = exists().where(
        reminders.certificate_id == certificates.id, reminders.not_after == certificates.not_after
    )
    # On SQLite the expiry is read as the text it is stored as (type_coerce skips the
    # dialect's slow datetime parsing) and written back as it was read.
    stored = type_coerce(certificates.not_after, String) if db.is_sqlite else certificates.not_after
    parse, dialect = UtcDateTime().process_result_value, db.engine.dialect
    last_id = ""
    total = 0
    while True:
        async with db.transaction() as session:
            page = (
                await session.execute(
                    select(certificates.id, stored)
                    .where(
                        certificates.id > last_id,
                        certificates.status == "active",
                        certificates.not_after > now,
                        ~planned_already,
                    )
                    .order_by(certificates.id)
                    .limit(batch)
                )
            ).all()
            if not page:
                return total
            expiries = [(c, cast(datetime, parse(value, dialect)), value) for c, value in page]
            total += await _plan(session, settings, expiries, now)
        last_id = page[-1][0]
        if on_progress is not None:
            on_progress(len(page))


async def send_due(
    session: AsyncSession,
    templates: NoticeTemplates,
    settings: CertificateSettings,
    now: datetime,
    *,
    certificate_id: str | None = None,
    limit: int = 500,
    default_locale: Locale = "ko",
) -> int:
    """Send (or skip, with a reason) reminders due by ``now``; returns how many were done."""
    query = (
        select(CertificateReminder, Certificate)
        .join(Certificate, Certificate.id == CertificateReminder.certificate_id)
        .where(CertificateReminder.status == "pending", CertificateReminder.due_at <= now)
        .order_by(CertificateReminder.due_at)
        .limit(limit)
    )
    if certificate_id is not None:
        query = query.where(CertificateReminder.certificate_id == certificate_id)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=CertificateReminder)
    rows = (await session.execute(query)).all()
    if not rows:
        return 0
    latest = await _latest_due(session, {reminder.certificate_id for reminder, _ in rows}, now)
    for reminder, certificate in rows:
        reason = _skip_reason(reminder, certificate, now, latest)
        notification_id = None
        if reason is None:
            notification_id = await send_notice(
                session,
                templates,
                customer_id=certificate.customer_id,
                kind="certificate_expiring",
                category="security",
                context={
                    "certificate_kind": certificate.kind,
                    "not_after": certificate.not_after,
                    "days_left": schedule.days_left(now, certificate.not_after),
                    "renew_url": settings.renew_url,
                },
                now=now,
                default_locale=default_locale,
                subject=certificate.id,
            )
        await session.execute(
            update(_REMINDERS)
            .where(
                _REMINDERS.c.certificate_id == reminder.certificate_id,
                _REMINDERS.c.not_after == reminder.not_after,
                _REMINDERS.c.days_before == reminder.days_before,
                _REMINDERS.c.status == "pending",
            )
            .values(
                status="skipped" if reason else "sent",
                reason=reason,
                notification_id=notification_id,
                done_at=now,
            )
        )
    return len(rows)


async def _latest_due(
    session: AsyncSession, certificate_ids: set[str], now: datetime
) -> dict[tuple[str, datetime], datetime]:
    """For each (certificate, expiry), the due time of its latest reminder already due,
    whatever its status: a reminder older than a sibling already sent is superseded too."""
    reminders = _REMINDERS.c
    result = await session.execute(
        select(reminders.certificate_id, reminders.not_after, func.max(reminders.due_at))
        .where(reminders.certificate_id.in_(certificate_ids), reminders.due_at <= now)
        .group_by(reminders.certificate_id, reminders.not_after)
    )
    latest: dict[tuple[str, datetime], datetime] = {}
    for certificate_id, not_after, due in result:
        latest[(certificate_id, not_after)] = due  # MAX keeps the column's type (UTC-aware)
    return latest


def _skip_reason(
    reminder: CertificateReminder,
    certificate: Certificate,
    now: datetime,
    latest: dict[tuple[str, datetime], datetime],
) -> str | None:
    if certificate.status != "active":
        return "revoked"
    if certificate.not_after != reminder.not_after:
        return "renewed"
    if certificate.not_after <= now:
        return "expired"
    if reminder.due_at < latest.get((reminder.certificate_id, reminder.not_after), reminder.due_at):
        return "superseded"
    return None


class ReminderWorker:
    """Sends due reminders in batches, each batch one transaction."""

    def __init__(
        self,
        db: Database,
        templates: NoticeTemplates,
        settings: CertificateSettings,
        *,
        clock: Callable[[], datetime],
        batch: int = 500,
    ) -> None:
        self._db = db
        self._templates = templates
        self._settings = settings
        self._clock = clock
        self._batch = batch

    async def run_once(self) -> int:
        async with self._db.transaction() as session:
            return await send_due(
                session, self._templates, self._settings, self._clock(), limit=self._batch
            )

    async def drain(self) -> int:
        total = 0
        while (done := await self.run_once()) > 0:
            total += done
        return total

    async def run_forever(self, poll_seconds: float) -> None:
        while True:
            try:
                done = await self.run_once()
            except Exception as exc:  # keep the schedule running; the next round may succeed
                log.error("certificates.reminders_failed", error=repr(exc))
                done = 0
            if done < self._batch:
                await asyncio.sleep(poll_seconds)
