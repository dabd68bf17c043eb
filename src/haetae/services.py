"""The platform's long-lived parts, built once from settings and shared by the app, the CLI
and the tests (no module-level globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from haetae.background import BackgroundTask
from haetae.bus import InProcessBus, OutboxRelay
from haetae.bus.base import Bus
from haetae.catalog import Catalog, catalog
from haetae.config import Settings
from haetae.db.base import utcnow
from haetae.db.engine import Database
from haetae.merchants.directory import MerchantDirectory
from haetae.notify.channels.base import Channel
from haetae.notify.channels.http_provider import HttpProviderChannel
from haetae.notify.channels.smtp import SmtpChannel
from haetae.notify.dispatcher import Dispatcher, DispatchSettings
from haetae.notify.templates import NoticeTemplates
from haetae.payments.challenge import PendingCards
from haetae.payments.connectors.base import IssuerConnector
from haetae.payments.connectors.iso8583 import Iso8583Connector
from haetae.payments.housekeeping import PaymentHousekeeper
from haetae.payments.idempotency import IdempotencyKeys
from haetae.payments.issuers import Issuer, IssuerRouter
from haetae.payments.recovery import PaymentRecovery
from haetae.payments.reversals import ReversalWorker
from haetae.payments.service import PaymentService
from haetae.payments.vault import CardVault
from haetae.risk.engine import ProvisionalRiskEngine, RiskEngine
from haetae.security.api_keys import ApiKeyVerifier
from haetae.security.card_crypto import CardSecrets


@dataclass
class Services:
    settings: Settings
    db: Database
    bus: Bus
    relay: OutboxRelay
    catalog: Catalog
    card_secrets: CardSecrets
    vault: CardVault
    api_keys: ApiKeyVerifier
    merchants: MerchantDirectory
    issuers: IssuerRouter
    reversals: ReversalWorker
    payments: PaymentService
    housekeeper: PaymentHousekeeper
    templates: NoticeTemplates
    channels: dict[str, Channel]
    dispatcher: Dispatcher
    clock: Callable[[], datetime]

    def __post_init__(self) -> None:
        self._dispatch_task = BackgroundTask(
            "notify-dispatcher",
            lambda: self.dispatcher.run_forever(self.settings.notify_poll_seconds),
        )

    async def start(self) -> None:
        self.relay.start()
        self.housekeeper.start()
        self._dispatch_task.start()

    async def stop(self) -> None:
        await self._dispatch_task.stop()
        for channel in self.channels.values():
            await channel.close()
        await self.housekeeper.stop()
        await self.reversals.stop()
        await self.relay.stop()
        await self.issuers.close()
        await self.bus.close()
        await self.db.dispose()


def build_services(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    risk: RiskEngine | None = None,
    connector_factory: Callable[..., IssuerConnector] = Iso8583Connector,
) -> Services:
    db = Database(settings.effective_database_url)
    bus = InProcessBus()
    relay = OutboxRelay(db, bus, poll_seconds=settings.outbox_poll_seconds)
    db.on_events_committed(relay.wake)
    texts = catalog()
    card_secrets = CardSecrets.from_settings(settings)
    vault = CardVault(card_secrets)
    router = IssuerRouter(
        [Issuer(issuer, connector_factory(issuer)) for issuer in settings.issuer_list()]
    )
    reversals = ReversalWorker(db, router, clock=clock)
    pending_cards = PendingCards()
    templates = NoticeTemplates()
    idempotency = IdempotencyKeys(
        db,
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
        wait_seconds=settings.idempotency_wait_seconds,
    )
    payments = PaymentService(
        db=db,
        settings=settings,
        catalog=texts,
        card_secrets=card_secrets,
        vault=vault,
        risk=risk or ProvisionalRiskEngine(),
        issuers=router,
        reversals=reversals,
        idempotency=idempotency,
        pending_cards=pending_cards,
        templates=templates,
        clock=clock,
    )
    recovery = PaymentRecovery(
        db=db, catalog=texts, issuers=router, pending_cards=pending_cards, clock=clock
    )
    channels = build_channels(settings)
    dispatcher = Dispatcher(
        db,
        channels,
        templates,
        clock=clock,
        settings=DispatchSettings(
            push_ack_timeout=timedelta(seconds=settings.push_ack_timeout_seconds),
            lease=timedelta(seconds=settings.notify_lease_seconds),
        ),
    )
    return Services(
        settings=settings,
        db=db,
        bus=bus,
        relay=relay,
        catalog=texts,
        card_secrets=card_secrets,
        vault=vault,
        api_keys=ApiKeyVerifier(db, ttl=settings.api_key_cache_seconds),
        merchants=MerchantDirectory(db, ttl=settings.api_key_cache_seconds),
        issuers=router,
        reversals=reversals,
        payments=payments,
        housekeeper=PaymentHousekeeper(recovery, reversals, idempotency, clock=clock),
        templates=templates,
        channels=channels,
        dispatcher=dispatcher,
        clock=clock,
    )


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The channels the settings configure (e-mail over SMTP, SMS and push over the HTTP
    provider protocol); the in-app inbox needs none: it is written with the notice."""
    channels: dict[str, Channel] = {}
    secret = settings.provider_secret.encode()
    if settings.smtp_url:
        channels["email"] = SmtpChannel(
            settings.smtp_url, sender=settings.email_sender, starttls=settings.smtp_starttls
        )
    if settings.sms_provider_url:
        channels["sms"] = HttpProviderChannel(settings.sms_provider_url, secret=secret)
    if settings.push_provider_url:
        channels["push"] = HttpProviderChannel(settings.push_provider_url, secret=secret)
    return channels
