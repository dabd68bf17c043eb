from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class InboxItemOut(BaseModel):
    id: str
    kind: str
    title: str
    body: str
    created_at: datetime
    read: bool
    banner: bool


class InboxOut(BaseModel):
    items: list[InboxItemOut]
