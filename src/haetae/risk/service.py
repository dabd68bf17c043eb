"""The fraud engine: features, the model's score and the analysts' rules, one decision.

For each event: the online feature store gives the features as they stood before it (then
counts it), the model scores them 0–100 and names the features that pushed the score up,
and the rules in force judge the event with its features and score. The most severe rule
hit decides (``allow`` when none hits). The decision is stored with what it saw, and
``review`` ones wait in the analysts' queue.

Payments call :meth:`RiskService.assess_payment` in-process; the bank's other systems call
``POST /v1/risk/evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.bus.base import Event
from haetae.catalog import Catalog, Locale
from haetae.db.base import new_id
from haetae.db.buffered import RowBuffer
from haetae.errors import HaetaeError
from haetae.notify.templates import format_seoul_time
from haetae.risk import metrics
from haetae.risk.decisions.service import Decisions, label_value, record_decision
from haetae.risk.decisions.writer import GroupCommitWriter
from haetae.risk.engine import Decision, PaymentRiskInput, RiskDecision
from haetae.risk.events import Device, RiskEvent
from haetae.risk.features import AsyncFeatureStore, FeatureStore, InProcessFeatureStore
from haetae.risk.features.warmup import event_row
from haetae.risk.model.explain import Reason
from haetae.risk.model.scorer import Scorer
from haetae.risk.rules.names import event_values
from haetae.risk.rules.ruleset import SEVERITY, RuleHit
from haetae.risk.rules.service import RuleBook

log = structlog.get_logger(__name__)

# The delayed-transfer rule (지연이체): at least three hours, cancellable until 30 minutes
# before it runs.
VOICE_PHISHING_DELAY = timedelta(hours=3)
# A certificate reissued this recently makes a transfer to a new payee look like the
# second step of voice phishing.
RECENT_REISSUE_HOURS = 72.0


@dataclass(frozen=True, slots=True)
class Warning:
    code: str
    message: str
    next_step: str
    delay_minutes: int
    release_at: datetime


@dataclass(frozen=True, slots=True)
class Assessment:
    decision_id: str
    decision: Decision
    score: int
    reasons: tuple[Reason, ...]
    rule_hits: tuple[RuleHit, ...]
    model_version: str | None
    features: Mapping[str, Any] = field(repr=False)
    warning: Warning | None = None


def _most_severe(*decisions: Decision) -> Decision:
    return min(decisions, key=lambda d: SEVERITY[d])


def looks_like_voice_phishing(event: RiskEvent, features: Mapping[str, Any]) -> bool:
    """A transfer to a new payee after a recent certificate reissue, or from a new device."""
    if event.kind != "transfer":
        return False
    reissue = features.get("hours_since_cert_reissue")
    recent_reissue = reissue is not None and float(reissue) <= RECENT_REISSUE_HOURS
    return bool(features.get("payee.is_new")) and (
        recent_reissue or bool(features.get("device.is_new"))
    )


class RiskService:
    def __init__(
        self,
        *,
        store: FeatureStore | AsyncFeatureStore,
        rules: RuleBook,
        scorer: Scorer | None,
        writer: GroupCommitWriter,
        catalog: Catalog,
        clock: Callable[[], datetime],
        contact_phone: str,
        decisions: Decisions,
    ) -> None:
        self.use_store(store)
        self.rules = rules
        self.scorer = scorer
        self._writer = writer
        self._catalog = catalog
        self._clock = clock
        self._contact_phone = contact_phone
        self._decisions = decisions

    def use_store(self, store: FeatureStore | AsyncFeatureStore) -> None:
        """Decide with ``store`` from now on. The in-process store is called directly (no
        await on the hot path); any other is a store across the network, awaited."""
        self.store = store
        self._local = store if isinstance(store, InProcessFeatureStore) else None
        self._remote = cast(AsyncFeatureStore, store)  # called only when _local is None

    @property
    def writer(self) -> GroupCommitWriter:
        return self._writer

    @property
    def model_version(self) -> str | None:
        return self.scorer.version if self.scorer else None

    async def evaluate(
        self, event: RiskEvent, *, locale: Locale = "ko", floor: Decision = "allow"
    ) -> Assessment:
        """Decide on one event; ``floor`` is the least severe decision the caller accepts
        (a merchant's step-up threshold makes a payment at least ``challenge``)."""
        assessment, _, record = await self._decide(event, locale=locale, floor=floor, count=True)
        await self._writer.write(record)  # answered once stored, with other decisions
        return assessment

    async def _decide(
        self, event: RiskEvent, *, locale: Locale, floor: Decision, count: bool
    ) -> tuple[Assessment, dict[str, Any], Callable[[AsyncSession | RowBuffer], None]]:
        """The decision on ``event``, its event row, and how to store it (in a transaction
        of the caller's choosing)."""
        row = event.row()
        row["event_id"] = event.event_id or new_id("rev")
        if self._local is not None:
            features = self._local.process(row) if count else self._local.features(row)
        else:
            remote = self._remote
            try:
                features = await (remote.process(row) if count else remote.features(row))
            except Exception as error:  # Redis down or too slow: no decision without features
                metrics.STORE_FAILURES.labels("features").inc()
                log.error("risk.store_unavailable", kind=event.kind, error=repr(error))
                raise HaetaeError("risk_unavailable") from error
        score, reasons = 0, cast(tuple[Reason, ...], ())
        if self.scorer is not None:
            scored = self.scorer.score(features)
            score, reasons = scored.score, scored.reasons
        values = {**features, **event_values(event, score)}
        hits = tuple((await self.rules.current()).evaluate(event.kind, values))
        decision = _most_severe(floor, *(hit.decision for hit in hits))
        metrics.DECISIONS.labels(event.kind, decision).inc()
        warning = None
        if decision in ("challenge", "review") and looks_like_voice_phishing(event, features):
            warning = self._voice_phishing_warning(locale)
        decision_id = new_id("rsk")
        now = self._clock()

        def record(session: AsyncSession | RowBuffer) -> None:
            record_decision(
                session,
                event_row=row,
                decision=decision,
                score=score,
                reasons=[
                    {"code": r.code, "feature": r.feature, "ko": r.ko, "en": r.en} for r in reasons
                ],
                rule_hits=[
                    {"name": h.name, "version": h.version, "decision": h.decision} for h in hits
                ],
                model_version=self.model_version,
                features=dict(features),
                now=now,
                decision_id=decision_id,
            )

        return (
            Assessment(
                decision_id=decision_id,
                decision=decision,
                score=score,
                reasons=reasons,
                rule_hits=hits,
                model_version=self.model_version,
                features=features,
                warning=warning,
            ),
            row,
            record,
        )

    def _voice_phishing_warning(self, locale: Locale) -> Warning:
        release_at = self._clock() + VOICE_PHISHING_DELAY
        minutes = int(VOICE_PHISHING_DELAY.total_seconds() // 60)
        text = self._catalog.render_error(
            "transfer_voice_phishing_warning",
            locale,
            params={
                "delay_minutes": minutes,
                "release_at": format_seoul_time(release_at, locale),
                "contact_phone": self._contact_phone,
            },
        )
        return Warning(
            code="transfer_voice_phishing_warning",
            message=text.message,
            next_step=text.next_step,
            delay_minutes=minutes,
            release_at=release_at,
        )

    # --- events from other domains ----------------------------------------------------------

    async def on_certificate_reissued(self, event: Event) -> None:
        """A reissue is scored like any event (rules may act on it) and counted, so the
        next transfer sees ``hours_since_cert_reissue``. Redeliveries are dropped by id."""
        if await self._decisions.reissue_decided(event.id):
            return
        payload = event.payload
        occurred = payload.get("reissued_at")
        await self.evaluate(
            RiskEvent(
                kind="certificate_reissue",
                event_id=event.id,
                customer_id=payload["customer_id"],
                occurred_at=datetime.fromisoformat(occurred) if occurred else event.occurred_at,
                device=Device(id=payload["device_id"]),
            )
        )

    async def on_decision_labelled(self, event: Event) -> None:
        """An analyst's label reaches the online features at once (the terminal risk
        features count fraud labels once their delay has passed). Applying a label twice
        leaves the same sums, so a redelivery needs no check."""
        try:
            record = await self._decisions.get(event.payload["decision_id"])
        except HaetaeError:
            return
        if record.label is None:
            return
        row = event_row(record.event, record.occurred_at)
        if self._local is not None:
            self._local.record_label(row, label_value(record.label))
        else:
            try:
                await self._remote.record_label(row, label_value(record.label))
            except Exception:
                metrics.STORE_FAILURES.labels("label").inc()
                raise  # the relay delivers the event again

    # --- the payments port ----------------------------------------------------------------

    async def assess_payment(self, event: PaymentRiskInput) -> RiskDecision:
        floor: Decision = "allow"
        if event.challenge_threshold is not None and event.amount >= event.challenge_threshold:
            floor = "challenge"
        # Counted once the issuer has answered (observe), so decline rates see the answer.
        assessment, row, record = await self._decide(
            RiskEvent(
                kind="payment",
                event_id=event.payment_id,
                customer_id=event.customer_id,
                occurred_at=self._clock(),
                amount=event.amount,
                currency=event.currency,
                card_id=event.card_fingerprint or None,
                terminal_id=event.merchant_id,
                device=Device(id=event.device_id, ip=event.ip) if event.device_id else None,
            ),
            locale="ko",
            floor=floor,
            count=False,
        )

        async def observe(approved: bool | None) -> None:
            counted = {**row, "approved": approved}
            if self._local is not None:
                self._local.update(counted)
                return
            try:
                await self._remote.update(counted)
            except Exception as error:  # the payment is decided and stored: it stands
                metrics.STORE_FAILURES.labels("count").inc()
                log.error(
                    "risk.payment_not_counted", payment_id=row.get("event_id"), error=repr(error)
                )

        codes = [hit.name for hit in assessment.rule_hits] + [r.code for r in assessment.reasons]
        if floor == "challenge" and not assessment.rule_hits:
            codes.insert(0, "amount_at_or_above_step_up_threshold")
        return RiskDecision(
            assessment.decision, assessment.score, codes, observe=observe, record=record
        )
