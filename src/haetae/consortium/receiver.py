"""Receiving shared reports from the affiliates.

A message is accepted once: it must come from an affiliate whose public key is configured,
be signed by that key, be addressed to us and be signed within the time window of our
clock. Its (sender, id) is then stored in the same transaction that puts its accounts,
devices and phone numbers on the risk lists, so a message that arrives again (an
acknowledgement lost on the way back, an attacker replaying it inside the window) is
answered with the acknowledgement it got the first time and changes nothing. Replays from
outside the window are refused by their time alone.

After the commit the rules are reloaded, so the lists are in force at once in this process
(other processes notice within the rule book's poll interval), and the ``on_fraud_report``
hook may open a linked case here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from haetae.bus.outbox import add_event
from haetae.consortium.envelope import (
    EnvelopeError,
    Message,
    seal_ack,
    to_millisecond,
    verify_message,
)
from haetae.consortium.models import ReceivedShare
from haetae.consortium.schemas import FraudReportPayload
from haetae.consortium.settings import ConsortiumSettings
from haetae.db.engine import Database
from haetae.errors import HaetaeError
from haetae.risk.rules.repository import add_to_list
from haetae.risk.rules.service import RuleBook

log = structlog.get_logger(__name__)

# Opens a case for a received fraud report; returns its id (None: no case). It may be
# called again for the same share (an earlier call failed, or its answer was not stored):
# it must be idempotent, e.g. by the (sender, sender's case id) the share names.
OnFraudReport = Callable[[ReceivedShare], Awaitable[str | None]]


class ConsortiumReceiver:
    def __init__(
        self,
        db: Database,
        rules: RuleBook,
        settings: ConsortiumSettings,
        *,
        clock: Callable[[], datetime],
        on_fraud_report: OnFraudReport | None = None,
    ) -> None:
        self._db = db
        self._rules = rules
        self._settings = settings
        self._clock = clock
        self.on_fraud_report = on_fraud_report

    async def receive(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Check and apply a message; returns the signed acknowledgement to answer with.
        Raises :class:`HaetaeError` naming the field when the message is refused."""
        settings = self._settings
        now = self._clock()
        try:
            message = verify_message(
                document,
                keys=settings.keys,
                us=settings.institution_code,
                now=now,
                window=settings.window,
            )
        except EnvelopeError as error:
            raise HaetaeError(
                error.code, field=error.field, params={"field": error.field, "detail": error.detail}
            ) from None
        payload = _payload(message)
        share = await self._find(message)
        if share is None:
            try:
                share = await self._apply(message, payload, now)
            except IntegrityError:
                share = await self._find(message)  # a copy that arrived at the same time won
                if share is None:
                    raise
            else:
                await self._reload_rules()
        else:
            log.info("consortium.repeat", sender=message.sender, message_id=message.id)
        await self._link_case(share)
        return self.ack_for(share)

    def ack_for(self, share: ReceivedShare) -> dict[str, Any]:
        """The acknowledgement of a stored share: signed with the time it was accepted, so
        every answer for it is the same, byte for byte."""
        return seal_ack(
            message_id=share.message_id,
            sender=self._settings.institution_code,
            recipient=share.sender,
            signed_at=share.received_at,
            key=self._settings.private_key,
        )

    async def _find(self, message: Message) -> ReceivedShare | None:
        async with self._db.sessions() as session:
            return await session.get(ReceivedShare, (message.sender, message.id))

    async def _apply(
        self, message: Message, payload: FraudReportPayload, now: datetime
    ) -> ReceivedShare:
        share = ReceivedShare(
            sender=message.sender,
            message_id=message.id,
            kind=message.kind,
            payload=message.payload,
            signed_at=message.signed_at,
            received_at=to_millisecond(now),
        )
        entries = payload.list_entries()
        async with self._db.transaction() as session:
            session.add(share)
            await session.flush()  # a repeat fails here, before anything else is written
            for name, values in entries.items():
                if values:
                    await add_to_list(session, name, values, now)
            add_event(
                session,
                "consortium.received",
                {
                    "sender": message.sender,
                    "message_id": message.id,
                    "kind": message.kind,
                    "origin_case_id": payload.case_id,
                },
            )
        log.info(
            "consortium.received",
            sender=message.sender,
            message_id=message.id,
            accounts=len(payload.accounts),
            devices=len(entries["mule_devices"]),
            phones=len(entries["reported_phones"]),
        )
        return share

    async def _reload_rules(self) -> None:
        try:
            await self._rules.reload()
        except Exception as exc:  # committed: the rule book's poll picks the lists up
            log.error("consortium.rules_reload_failed", error=repr(exc))

    async def _link_case(self, share: ReceivedShare) -> None:
        hook = self.on_fraud_report
        if hook is None or share.case_id is not None or share.kind != "fraud_report":
            return
        try:
            case_id = await hook(share)
        except Exception as exc:
            # The lists are in force; the case is not open yet. No acknowledgement: the
            # affiliate sends the message again and the hook gets another chance.
            log.error(
                "consortium.case_failed",
                sender=share.sender,
                message_id=share.message_id,
                error=repr(exc),
            )
            raise HaetaeError("consortium_case_failed") from exc
        if case_id is None:
            return
        async with self._db.transaction() as session:
            stored = await session.get(ReceivedShare, (share.sender, share.message_id))
            if stored is not None and stored.case_id is None:
                stored.case_id = case_id
        share.case_id = case_id


def _payload(message: Message) -> FraudReportPayload:
    try:
        return FraudReportPayload.model_validate(message.payload)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(["payload", *(str(part) for part in first["loc"])])
        raise HaetaeError(
            "consortium_message_invalid",
            field=field,
            params={"field": field, "detail": first["msg"]},
        ) from None
