"""Notification routes for the bank's systems (service keys with the ``notify`` scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy import select, update

from haetae.db.base import utcnow
from haetae.deps import ServicesDep, require_scope
from haetae.errors import HaetaeError
from haetae.notify import service
from haetae.notify.models import (
    ChannelPreference,
    Customer,
    Delivery,
    DeliveryEvent,
    Notification,
)
from haetae.notify.policy import CATEGORIES, CHANNELS
from haetae.notify.schemas import (
    CustomerIn,
    CustomerOut,
    DeliveryEventOut,
    DeliveryOut,
    InboxItemOut,
    InboxOut,
    NotificationOut,
    PreferencesDoc,
    ReceiptIn,
)
from haetae.security.api_keys import Principal

router = APIRouter(tags=["notifications"])
NotifyPrincipal = Annotated[Principal, Depends(require_scope("notify"))]


def _customer_out(customer: Customer) -> CustomerOut:
    return CustomerOut(
        id=customer.id,
        phone=customer.phone,
        email=customer.email,
        locale=customer.locale,
        push_token=customer.push_token,
        marketing_consent=customer.marketing_consent_at is not None,
        marketing_night_consent=customer.marketing_night_consent_at is not None,
    )


@router.put("/v1/customers/{customer_id}", response_model=CustomerOut)
async def put_customer(
    customer_id: str, body: CustomerIn, services: ServicesDep, _: NotifyPrincipal
) -> CustomerOut:
    now = utcnow()
    async with services.db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            customer = Customer(id=customer_id)
            session.add(customer)
        customer.phone, customer.email = body.phone, body.email
        customer.locale, customer.push_token = body.locale, body.push_token
        # Keep the first time of consent (it is re-confirmed every two years from then).
        customer.marketing_consent_at = (
            (customer.marketing_consent_at or now) if body.marketing_consent else None
        )
        customer.marketing_night_consent_at = (
            (customer.marketing_night_consent_at or now) if body.marketing_night_consent else None
        )
        customer.updated_at = now
    return _customer_out(customer)


@router.get("/v1/customers/{customer_id}/preferences", response_model=PreferencesDoc)
async def get_preferences(
    customer_id: str, services: ServicesDep, _: NotifyPrincipal
) -> PreferencesDoc:
    async with services.db.sessions() as session:
        rows = list(
            await session.scalars(
                select(ChannelPreference).where(ChannelPreference.customer_id == customer_id)
            )
        )
    chosen = {(r.category, r.channel): r.enabled for r in rows}
    return PreferencesDoc.model_validate(
        {
            "preferences": {
                category: {channel: chosen.get((category, channel), True) for channel in CHANNELS}
                for category in CATEGORIES
            }
        }
    )


@router.put("/v1/customers/{customer_id}/preferences", response_model=PreferencesDoc)
async def put_preferences(
    customer_id: str, body: PreferencesDoc, services: ServicesDep, principal: NotifyPrincipal
) -> PreferencesDoc:
    if body.preferences.get("security", {}).get("inbox") is False:
        # Security notices cannot be switched off entirely: the inbox always gets them.
        raise HaetaeError(
            "request_invalid",
            field="preferences.security.inbox",
            params={
                "field": "preferences.security.inbox",
                "detail": "security notices always reach the in-app inbox",
            },
        )
    async with services.db.transaction() as session:
        if await session.get(Customer, customer_id) is None:
            raise HaetaeError("not_found", field="customer_id")
        for category, channels in body.preferences.items():
            for channel, enabled in channels.items():
                row = await session.get(ChannelPreference, (customer_id, category, channel))
                if row is None:
                    session.add(
                        ChannelPreference(
                            customer_id=customer_id,
                            category=category,
                            channel=channel,
                            enabled=enabled,
                        )
                    )
                else:
                    row.enabled = enabled
    return await get_preferences(customer_id, services, principal)


@router.get("/v1/customers/{customer_id}/inbox", response_model=InboxOut)
async def get_inbox(customer_id: str, services: ServicesDep, _: NotifyPrincipal) -> InboxOut:
    async with services.db.sessions() as session:
        items = await service.list_inbox(session, customer_id)
    return InboxOut(items=[InboxItemOut.model_validate(i, from_attributes=True) for i in items])


@router.post("/v1/customers/{customer_id}/inbox/{item_id}/read", status_code=204)
async def mark_read(
    customer_id: str, item_id: str, services: ServicesDep, _: NotifyPrincipal
) -> Response:
    async with services.db.transaction() as session:
        if not await service.mark_read(session, customer_id, item_id):
            raise HaetaeError("not_found")
    return Response(status_code=204)


@router.post("/v1/customers/{customer_id}/inbox/{item_id}/dismiss", status_code=204)
async def dismiss(
    customer_id: str, item_id: str, services: ServicesDep, _: NotifyPrincipal
) -> Response:
    async with services.db.transaction() as session:
        if not await service.dismiss(session, customer_id, item_id):
            raise HaetaeError("not_found")
    return Response(status_code=204)


@router.get("/v1/notifications/{notification_id}", response_model=NotificationOut)
async def get_notification(
    notification_id: str, services: ServicesDep, _: NotifyPrincipal
) -> NotificationOut:
    async with services.db.sessions() as session:
        notification = await session.get(Notification, notification_id)
        if notification is None:
            raise HaetaeError("not_found", field="notification_id")
        deliveries = list(
            await session.scalars(
                select(Delivery)
                .where(Delivery.notification_id == notification_id)
                .order_by(Delivery.created_at, Delivery.id)
            )
        )
        events = list(
            await session.scalars(
                select(DeliveryEvent)
                .where(DeliveryEvent.delivery_id.in_([d.id for d in deliveries]))
                .order_by(DeliveryEvent.id)
            )
        )
    return NotificationOut(
        id=notification.id,
        customer_id=notification.customer_id,
        kind=notification.kind,
        category=notification.category,
        created_at=notification.created_at,
        deliveries=[
            DeliveryOut(
                id=d.id,
                channel=d.channel,
                status=d.status,
                reason=d.reason,
                attempts=d.attempts,
                fallback_of=d.fallback_of,
                history=[
                    DeliveryEventOut(status=e.status, reason=e.reason, at=e.at)
                    for e in events
                    if e.delivery_id == d.id
                ],
            )
            for d in deliveries
        ],
    )


@router.post("/v1/notifications/deliveries/{delivery_id}/receipt", status_code=204)
async def delivery_receipt(
    delivery_id: str, body: ReceiptIn, services: ServicesDep, _: NotifyPrincipal
) -> Response:
    """A provider's delivery report, or the app's acknowledgement of a push."""
    async with services.db.transaction() as session:
        result = await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "sent")
            .values(status=body.status, reason=body.reason)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            if await session.get(Delivery, delivery_id) is None:
                raise HaetaeError("not_found", field="delivery_id")
            return Response(status_code=204)  # a repeated or late report changes nothing
        session.add(DeliveryEvent(delivery_id=delivery_id, status=body.status, reason=body.reason))
    return Response(status_code=204)
