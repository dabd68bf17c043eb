"""Inbox use cases. Writes go through the caller's transaction, with an outbox event."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.bus.outbox import add_event
from haetae.db.base import new_id
from haetae.notify.models import InboxItem


async def post_to_inbox(
    session: AsyncSession,
    *,
    customer_id: str,
    kind: str,
    title: str,
    body: str,
    banner: str | None = None,
    subject: str | None = None,
) -> str:
    """``banner``: the one line the app's banner shows for this item, if it has one."""
    item_id = new_id("inb")
    session.add(
        InboxItem(
            id=item_id,
            customer_id=customer_id,
            kind=kind,
            title=title,
            body=body,
            banner=banner is not None,
            banner_text=banner,
            subject=subject,
        )
    )
    # The event names the item, not its body: a step-up code has no business on the bus.
    add_event(
        session,
        "notification.inbox_posted",
        {"inbox_item_id": item_id, "customer_id": customer_id, "kind": kind},
    )
    return item_id


async def list_inbox(session: AsyncSession, customer_id: str, limit: int = 50) -> list[InboxItem]:
    query = (
        select(InboxItem)
        .where(InboxItem.customer_id == customer_id, InboxItem.dismissed.is_(False))
        .order_by(InboxItem.created_at.desc(), InboxItem.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def _update_item(
    session: AsyncSession, customer_id: str, item_id: str, **values: bool
) -> bool:
    result = await session.execute(
        update(InboxItem)
        .where(InboxItem.id == item_id, InboxItem.customer_id == customer_id)
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def mark_read(session: AsyncSession, customer_id: str, item_id: str) -> bool:
    return await _update_item(session, customer_id, item_id, read=True)


async def dismiss(session: AsyncSession, customer_id: str, item_id: str) -> bool:
    """Gone from the inbox and its banner; kept in the database."""
    return await _update_item(session, customer_id, item_id, dismissed=True)


async def take_down_banners(
    session: AsyncSession, customer_id: str, *, kind: str, subject: str
) -> None:
    """A banner about something that changed (a certificate renewed) stops showing."""
    await session.execute(
        update(InboxItem)
        .where(
            InboxItem.customer_id == customer_id,
            InboxItem.kind == kind,
            InboxItem.subject == subject,
            InboxItem.banner.is_(True),
        )
        .values(banner=False)
    )
