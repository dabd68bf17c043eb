"""The platform's long-lived parts, built once from settings and shared by the app, the CLI
and the tests (no module-level globals)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from haetae.background import BackgroundTask
from haetae.bus import InProcessBus, OutboxRelay
from haetae.bus.base import Bus
from haetae.cases.actions import ActionPolicy
from haetae.cases.calendar import BankHolidays
from haetae.cases.service import CaseService
from haetae.catalog import Catalog, catalog
from haetae.certificates.reminders import ReminderWorker
from haetae.certificates.service import CertificateService
from haetae.certificates.settings import CertificateSettings
from haetae.config import Settings
from haetae.consortium.models import ReceivedShare
from haetae.consortium.service import Consortium
from haetae.db.base import utcnow
from haetae.db.engine import Database
from haetae.merchants.directory import MerchantDirectory
from haetae.notify.channels.base import Channel
from haetae.notify.channels.http_provider import HttpProviderChannel
from haetae.notify.channels.smtp import SmtpChannel
from haetae.notify.dispatcher import Dispatcher, DispatchSettings
from haetae.notify.templates import NoticeTemplates
from haetae.payments.connectors.base import IssuerConnector
from haetae.payments.connectors.iso8583 import Iso8583Connector
from haetae.payments.housekeeping import PaymentHousekeeper
from haetae.payments.idempotency import IdempotencyKeys
from haetae.payments.issuers import Issuer, IssuerRouter
from haetae.payments.pending_cards import MemoryPendingCards, PendingCards, RedisPendingCards
from haetae.payments.recovery import PaymentRecovery
from haetae.payments.reversals import ReversalWorker
from haetae.payments.service import PaymentService
from haetae.payments.vault import CardVault
from haetae.risk.decisions.service import Decisions
from haetae.risk.decisions.writer import GroupCommitWriter
from haetae.risk.engine import RiskEngine
from haetae.risk.features import (
    FEATURE_NAMES,
    AsyncFeatureStore,
    FeatureStore,
    InProcessFeatureStore,
    RedisFeatureStore,
    feature_types,
)
from haetae.risk.features.warmup import replay_decisions
from haetae.risk.model.registry import RegistryError
from haetae.risk.model.scorer import Scorer
from haetae.risk.rules.history import ParquetHistory
from haetae.risk.rules.service import RuleBook
from haetae.risk.service import RiskService
from haetae.security.api_keys import ApiKeyVerifier
from haetae.security.card_crypto import CardSecrets
from haetae.security.rate_limits import RateLimits, RateLimitSettings

log = structlog.get_logger(__name__)


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
    rate_limits: RateLimits
    merchants: MerchantDirectory
    issuers: IssuerRouter
    reversals: ReversalWorker
    payments: PaymentService
    pending_cards: PendingCards
    housekeeper: PaymentHousekeeper
    templates: NoticeTemplates
    channels: dict[str, Channel]
    dispatcher: Dispatcher
    certificates: CertificateService
    reminders: ReminderWorker
    rules: RuleBook
    risk: RiskService
    decisions: Decisions
    consortium: Consortium
    cases: CaseService
    clock: Callable[[], datetime]

    def __post_init__(self) -> None:
        self._dispatch_task = BackgroundTask(
            "notify-dispatcher",
            lambda: self.dispatcher.run_forever(self.settings.notify_poll_seconds),
        )
        self._reminder_task = BackgroundTask(
            "certificate-reminders",
            lambda: self.reminders.run_forever(self.settings.certificate_poll_seconds),
        )
        self._consortium_task = BackgroundTask(
            "consortium-sender",
            lambda: self.consortium.sender.run_forever(self.settings.consortium_poll_seconds),
        )

    async def start(self) -> None:
        await self._replay_features()
        settle_heap()  # the replayed feature windows are start-up's largest part
        await self.db.start_checkpointer()
        self.relay.start()
        self.housekeeper.start()
        self._dispatch_task.start()
        self._reminder_task.start()
        self._consortium_task.start()

    async def _replay_features(self) -> None:
        """The in-process store starts from the stored decisions, not empty (see
        ``risk.features.warmup``); Redis keeps its own history across restarts."""
        days = self.settings.feature_replay_days
        if not days or not isinstance(self.risk.store, InProcessFeatureStore):
            return
        replayed = await replay_decisions(
            self.db, self.risk.store, since=self.clock() - timedelta(days=days)
        )
        if replayed.events:
            log.info(
                "risk.features_replayed",
                events=replayed.events,
                labels=replayed.labels,
                seconds=round(replayed.seconds, 1),
            )

    async def stop(self) -> None:
        await self._consortium_task.stop()
        await self.consortium.sender.close()
        await self._reminder_task.stop()
        await self._dispatch_task.stop()
        for channel in self.channels.values():
            await channel.close()
        await self.housekeeper.stop()
        await self.reversals.stop()
        await self.relay.stop()
        await self.issuers.close()
        await self.pending_cards.close()
        if isinstance(self.risk.store, RedisFeatureStore):
            await self.risk.store.close()
        await self.bus.close()
        await self.db.dispose()


def build_services(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    risk: RiskEngine | None = None,
    connector_factory: Callable[..., IssuerConnector] = Iso8583Connector,
    scores: bool = True,
) -> Services:
    """Everything, wired. ``scores=False`` is for processes that never decide (the
    notification worker): no model is loaded, so none is missed in their logs."""
    db = Database(
        settings.effective_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        commit_delay=settings.sqlite_commit_delay_ms / 1000,
    )
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
    pending_cards = build_pending_cards(settings, card_secrets)
    templates = NoticeTemplates()
    idempotency = IdempotencyKeys(
        db,
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
        wait_seconds=settings.idempotency_wait_seconds,
    )
    decisions = Decisions(db)
    rules = RuleBook(
        db,
        clock=clock,
        features=feature_types(),
        history=ParquetHistory(settings.effective_risk_history),
    )
    fraud = RiskService(
        store=build_feature_store(settings),
        rules=rules,
        scorer=load_scorer(settings.effective_models_dir) if scores else None,
        writer=GroupCommitWriter(db),
        catalog=texts,
        clock=clock,
        contact_phone=settings.contact_phone,
        decisions=decisions,
    )
    payments = PaymentService(
        db=db,
        settings=settings,
        catalog=texts,
        card_secrets=card_secrets,
        vault=vault,
        risk=risk or fraud,
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
    certificate_settings = CertificateSettings.from_settings(settings)
    bus.subscribe("certificate.reissued", "risk", fraud.on_certificate_reissued)
    bus.subscribe("risk.labelled", "risk-features", fraud.on_decision_labelled)
    consortium = Consortium.from_settings(db, rules, settings, clock=clock)
    cases = CaseService(
        db,
        templates,
        rules,
        clock=clock,
        policy=ActionPolicy(
            institution_code=settings.institution_code,
            reissue_window=timedelta(days=settings.case_reissue_window_days),
        ),
        contact_phone=settings.contact_phone,
        share=consortium.share_fraud_report,
        holidays=BankHolidays(settings.bank_closed_days),
    )

    async def open_linked_case(share: ReceivedShare) -> str:
        return await cases.open_linked(share.sender, share.message_id, dict(share.payload))

    consortium.on_fraud_report = open_linked_case
    return Services(
        settings=settings,
        db=db,
        bus=bus,
        relay=relay,
        catalog=texts,
        card_secrets=card_secrets,
        vault=vault,
        api_keys=ApiKeyVerifier(db, ttl=settings.api_key_cache_seconds),
        rate_limits=RateLimits(
            RateLimitSettings(
                merchant=settings.rate_limit_merchant,
                service=settings.rate_limit_service,
                failed_auth=settings.rate_limit_failed_auth,
                storage=settings.rate_limit_storage,
            )
        ),
        merchants=MerchantDirectory(db, ttl=settings.api_key_cache_seconds),
        issuers=router,
        reversals=reversals,
        payments=payments,
        pending_cards=pending_cards,
        housekeeper=PaymentHousekeeper(recovery, reversals, idempotency, clock=clock),
        templates=templates,
        channels=channels,
        dispatcher=dispatcher,
        certificates=CertificateService(db, templates, clock=clock, settings=certificate_settings),
        reminders=ReminderWorker(db, templates, certificate_settings, clock=clock),
        rules=rules,
        risk=fraud,
        decisions=decisions,
        consortium=consortium,
        cases=cases,
        clock=clock,
    )


# Allocations (net of frees) between young collections; Python's default is 700. A server
# holds tens of thousands of objects per batch of requests in flight (64 concurrent fraud
# decisions, say): collected every 700 allocations, they survived two young collections
# while in flight, reached the old generation, and set off a full collection of the whole
# heap about every half second (62 ms each: 15% of a decision server's CPU and its p99).
# With 50,000 they die young, by reference counting (bench/RESULTS.md, fraud detection).
YOUNG_COLLECTION_THRESHOLD = 50_000


def settle_heap() -> None:
    """Call once start-up is done (``Services.start`` does): what it allocated (modules,
    the model, templates, the feature store's replayed windows) lives as long as the
    process, so it is moved out of the collector's reach; otherwise every full collection
    re-scans it (measured: ~7% of a notify worker's time, 138 ms per full collection in an
    API process, and 391 ms once a year of features is replayed; bench/RESULTS.md). The
    young generation is then collected less often (``YOUNG_COLLECTION_THRESHOLD``)."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(YOUNG_COLLECTION_THRESHOLD, young), middle, old)


def build_feature_store(settings: Settings) -> FeatureStore | AsyncFeatureStore:
    """In-process by default; Redis when ``HAETAE_REDIS_URL`` is set (several API processes
    then share one view of each customer's, card's and device's history)."""
    if settings.redis_url:
        return RedisFeatureStore.from_url(settings.redis_url)
    return InProcessFeatureStore()


def build_pending_cards(settings: Settings, secrets: CardSecrets) -> PendingCards:
    """In this process by default; encrypted in Redis when ``HAETAE_REDIS_URL`` is set, so
    that a step-up started on one API process can be completed on another."""
    if settings.redis_url:
        key = secrets.encryption_key("pending-cards")
        return RedisPendingCards.from_url(settings.redis_url, key)
    return MemoryPendingCards()


def load_scorer(models_dir: Path) -> Scorer | None:
    """The latest trained model, or None (then scores are 0 and only rules decide)."""
    try:
        return Scorer.load(models_dir, "latest", FEATURE_NAMES)
    except (FileNotFoundError, RegistryError) as error:
        log.warning("risk.no_model", models_dir=str(models_dir), detail=str(error))
        return None


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
