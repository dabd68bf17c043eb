"""Inbox routes for the bank's app (service keys with the ``notify`` scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from haetae.deps import ServicesDep, require_scope
from haetae.errors import HaetaeError
from haetae.notify import service
from haetae.notify.schemas import InboxItemOut, InboxOut
from haetae.security.api_keys import Principal

router = APIRouter(prefix="/v1/customers", tags=["notifications"])
NotifyPrincipal = Annotated[Principal, Depends(require_scope("notify"))]


@router.get("/{customer_id}/inbox", response_model=InboxOut)
async def get_inbox(customer_id: str, services: ServicesDep, _: NotifyPrincipal) -> InboxOut:
    async with services.db.sessions() as session:
        items = await service.list_inbox(session, customer_id)
    return InboxOut(items=[InboxItemOut.model_validate(i, from_attributes=True) for i in items])


@router.post("/{customer_id}/inbox/{item_id}/read", status_code=204)
async def mark_read(
    customer_id: str, item_id: str, services: ServicesDep, _: NotifyPrincipal
) -> None:
    async with services.db.transaction() as session:
        if not await service.mark_read(session, customer_id, item_id):
            raise HaetaeError("not_found")
