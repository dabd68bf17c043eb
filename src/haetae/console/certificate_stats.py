"""What the certificate page shows: expiries per ISO week (Seoul calendar) and the recent
certificate notices with each channel's delivery. Read-only queries, portable SQL: the
weeks are counted in Python, so SQLite and PostgreSQL agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.certificates.models import Certificate
from haetae.certificates.schedule import seoul_date
from haetae.notify.models import Delivery, Notification
from haetae.timezones import SEOUL

WEEKS = 12
NOTICE_KINDS: tuple[str, ...] = (
    "certificate_expiring",
    "certificate_renewed",
    "certificate_reissued",
)
NOTICE_LIMIT = 20


@dataclass(frozen=True, slots=True)
class WeekCount:
    """Active certificates expiring in one ISO week (Monday to Sunday, Seoul)."""

    monday: date
    joint: int = 0
    financial: int = 0

    @property
    def total(self) -> int:
        return self.joint + self.financial

    @property
    def iso_week(self) -> str:
        """``2026-W48``."""
        year, week, _ = self.monday.isocalendar()
        return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class DeliveryState:
    status: str  # queued | sending | sent | delivered | failed | suppressed
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class NoticeRow:
    notification_id: str
    created_at: datetime
    customer_id: str
    kind: str
    deliveries: dict[str, DeliveryState] = field(default_factory=dict)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


async def weekly_expiries(
    session: AsyncSession, now: datetime, weeks: int = WEEKS
) -> list[WeekCount]:
    """This ISO week and the ``weeks - 1`` after it; a week with no expiry counts zero.
    Only active certificates not yet expired: a revoked or renewed-past one needs nothing."""
    first = week_start(seoul_date(now))
    mondays = [first + timedelta(weeks=n) for n in range(weeks)]
    end = datetime.combine(first + timedelta(weeks=weeks), time(0), SEOUL).astimezone(UTC)
    rows = await session.execute(
        select(Certificate.kind, Certificate.not_after).where(
            Certificate.status == "active",
            Certificate.not_after > now,
            Certificate.not_after < end,
        )
    )
    counts = {monday: {"joint": 0, "financial": 0} for monday in mondays}
    for kind, not_after in rows:
        bucket = counts.get(week_start(seoul_date(not_after)))
        if bucket is not None and kind in bucket:
            bucket[kind] += 1
    return [WeekCount(m, counts[m]["joint"], counts[m]["financial"]) for m in mondays]


async def recent_notices(
    session: AsyncSession,
    limit: int = NOTICE_LIMIT,
    kinds: Sequence[str] = NOTICE_KINDS,
) -> list[NoticeRow]:
    """The latest certificate notices, newest first, each with its channels' latest state
    (a channel's fallback delivery, such as an SMS after an unanswered push, replaces the
    earlier state of that channel)."""
    notifications = list(
        await session.scalars(
            select(Notification)
            .where(Notification.kind.in_(kinds))
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )
    by_notification: dict[str, dict[str, DeliveryState]] = {n.id: {} for n in notifications}
    if notifications:
        deliveries = await session.scalars(
            select(Delivery)
            .where(Delivery.notification_id.in_(list(by_notification)))
            .order_by(Delivery.created_at, Delivery.id)
        )
        for delivery in deliveries:
            by_notification[delivery.notification_id][delivery.channel] = DeliveryState(
                delivery.status, delivery.reason
            )
    return [
        NoticeRow(
            notification_id=n.id,
            created_at=n.created_at,
            customer_id=n.customer_id,
            kind=n.kind,
            deliveries=by_notification[n.id],
        )
        for n in notifications
    ]
