"""Joint response with affiliate institutions: what the rest of the platform calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.config import Settings
from haetae.consortium.envelope import Kind
from haetae.consortium.receiver import ConsortiumReceiver, OnFraudReport
from haetae.consortium.sender import ConsortiumSender
from haetae.consortium.settings import ConsortiumSettings
from haetae.db.engine import Database
from haetae.risk.rules.service import RuleBook


class Consortium:
    """The sender (messages out, retried until acknowledged) and the receiver (messages in,
    applied once). ``on_fraud_report`` opens a linked case for a received report."""

    def __init__(
        self,
        db: Database,
        rules: RuleBook,
        settings: ConsortiumSettings,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.sender = ConsortiumSender(db, settings, clock=clock, transport=transport)
        self.receiver = ConsortiumReceiver(db, rules, settings, clock=clock)

    @classmethod
    def from_settings(
        cls, db: Database, rules: RuleBook, settings: Settings, *, clock: Callable[[], datetime]
    ) -> Consortium:
        return cls(db, rules, ConsortiumSettings.from_settings(settings), clock=clock)

    @property
    def on_fraud_report(self) -> OnFraudReport | None:
        return self.receiver.on_fraud_report

    @on_fraud_report.setter
    def on_fraud_report(self, hook: OnFraudReport | None) -> None:
        self.receiver.on_fraud_report = hook

    async def share_in(
        self, session: AsyncSession, *, kind: Kind, payload: Mapping[str, Any]
    ) -> list[str]:
        return await self.sender.share_in(session, kind=kind, payload=payload)

    async def share_fraud_report(self, session: AsyncSession, payload: dict[str, Any]) -> None:
        await self.sender.share_fraud_report(session, payload)

    async def receive(self, document: Mapping[str, Any]) -> dict[str, Any]:
        return await self.receiver.receive(document)
