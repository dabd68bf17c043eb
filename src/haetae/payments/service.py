"""Payment use cases: create (validate, tokenize, score, step up, authorize), complete a
step-up, cancel, look up. Each database write is one short transaction; none is held open
while the issuer is called."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.catalog import Catalog, Locale
from haetae.config import Settings
from haetae.db.base import new_id
from haetae.db.buffered import RowBuffer
from haetae.db.engine import Database, Statements
from haetae.errors import HaetaeError
from haetae.merchants.models import Merchant
from haetae.notify.notices import send_notice
from haetae.notify.templates import NoticeTemplates
from haetae.payments import metrics, repository
from haetae.payments.challenge import code_hash, new_code, step_up_result
from haetae.payments.connectors.base import (
    AuthorizationRequest,
    CardDetails,
    IssuerTimeout,
    IssuerUnreachable,
    StepUpResult,
)
from haetae.payments.connectors.mapping import outcome_for
from haetae.payments.draft import PaymentDraft, PaymentState
from haetae.payments.idempotency import (
    Claim,
    IdempotencyKeys,
    KeyTaken,
    request_fingerprint,
)
from haetae.payments.intake import check_amount, read_card
from haetae.payments.issuers import IssuerRouter, new_rrn
from haetae.payments.maintenance import maintenance_ends_at
from haetae.payments.models import Payment, PaymentChallenge
from haetae.payments.outcomes import PaymentResult, add_payment_event, fail, result_of
from haetae.payments.pending_cards import PendingCards
from haetae.payments.responses import PUBLIC_STATUS, payment_out
from haetae.payments.reversals import ReversalWorker
from haetae.payments.schemas import PaymentCreate, PaymentOut
from haetae.payments.vault import CardVault
from haetae.risk.engine import PaymentRiskInput, RiskEngine
from haetae.security.card_crypto import CardSecrets

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Attempt:
    """One create request on its way through the gateway."""

    payment: PaymentState
    merchant: Merchant
    locale: Locale
    claim: Claim | None
    # The row as this request last wrote it (repository.stored_state); None before the
    # first write (which also claims the Idempotency-Key). Later writes are conditional on
    # its status and set only what changed since.
    stored: dict[str, Any] | None = None
    # The risk engine's hook for the issuer's answer (see RiskDecision.observe).
    observe: Callable[[bool | None], Awaitable[None]] | None = None
    # Stores the risk decision in the payment's first write (see RiskDecision.record).
    record_risk: Callable[[AsyncSession | RowBuffer], None] | None = None


class _Superseded(Exception):
    """The payment's row changed under this request (recovery decided it first)."""


class PaymentService:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        catalog: Catalog,
        card_secrets: CardSecrets,
        vault: CardVault,
        risk: RiskEngine,
        issuers: IssuerRouter,
        reversals: ReversalWorker,
        idempotency: IdempotencyKeys,
        pending_cards: PendingCards,
        templates: NoticeTemplates,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._settings = settings
        self._catalog = catalog
        self._secrets = card_secrets
        self._otp_key = card_secrets.derived_key("otp")
        self._request_key = card_secrets.derived_key("idempotency-request")
        self._vault = vault
        self._risk = risk
        self._issuers = issuers
        self._reversals = reversals
        self._idempotency = idempotency
        self._pending = pending_cards
        self._templates = templates
        self._clock = clock

    # --- create -------------------------------------------------------------------------

    async def create(
        self,
        merchant: Merchant,
        body: PaymentCreate,
        *,
        locale: Locale,
        idempotency_key: str | None,
    ) -> PaymentResult:
        """Take a payment. With an Idempotency-Key, the key is claimed in the same
        transaction as the payment's first write: everything before it (validation, risk)
        has no side effects, so of two concurrent requests with one key exactly one writes
        and calls the issuer; the other replays its response."""
        # Request errors (422) come first and claim nothing: like Stripe, a request that
        # never started may be corrected and sent again with the same key.
        check_amount(merchant, body, locale)
        claim = None
        if idempotency_key is not None:
            request_hash = request_fingerprint(self._request_key, body.model_dump(mode="json"))
            claim = Claim(idempotency_key, request_hash)
        # No look-up first: a retry is validated and scored again (pure work), then meets the
        # first request's key in its first write and replays that response.
        while True:
            try:
                return await self._create(new_id("pay"), merchant, body, locale, claim)
            except KeyTaken:
                assert claim is not None
                replay = await self._idempotency.replay(merchant.id, claim, self._clock())
                if replay is not None:
                    return PaymentResult(replay.status, PaymentOut.model_validate(replay.body))
                # The first holder's key expired in between: take the payment afresh.

    async def _create(
        self,
        payment_id: str,
        merchant: Merchant,
        body: PaymentCreate,
        locale: Locale,
        claim: Claim | None,
    ) -> PaymentResult:
        now = self._clock()
        payment = PaymentDraft(
            id=payment_id,
            merchant_id=merchant.id,
            order_id=body.order_id,
            customer_id=body.customer_id,
            amount=body.amount,
            currency=body.currency,
            status="pending",
            locale=locale,
            device_id=body.device.id if body.device else None,
            ip=body.device.ip if body.device else None,
            created_at=now,
        )
        attempt = _Attempt(payment, merchant, locale, claim)
        try:
            card = read_card(payment, body, now, self._secrets)
        except HaetaeError as error:
            fail(payment, "failed", error.code, error.field)
            return await self._finish(attempt)

        risk_input = PaymentRiskInput(
            merchant_id=merchant.id,
            customer_id=body.customer_id,
            amount=body.amount,
            currency=body.currency,
            card_fingerprint=payment.card_fingerprint or "",
            card_brand=payment.card_brand or "",
            challenge_threshold=merchant.challenge_thresholds.get(body.currency),
            device_id=payment.device_id,
            ip=payment.ip,
            payment_id=payment.id,
        )
        try:
            decision = await self._risk.assess_payment(risk_input)
        except HaetaeError as error:
            if error.code != "risk_unavailable":
                raise
            # Fail closed: no card is sent to its issuer without the fraud check.
            fail(payment, "failed", "risk_unavailable", None)
            return await self._finish(attempt)
        payment.risk_decision, payment.risk_score = decision.decision, decision.score
        payment.risk_reasons = list(decision.reasons)
        attempt.observe, attempt.record_risk = decision.observe, decision.record
        if decision.decision == "block":
            fail(payment, "declined", "fraud_suspected", None)
            return await self._finish(attempt)
        if decision.decision == "challenge":
            return await self._start_challenge(attempt, card, source="risk")
        # "review" lets the payment through; the analyst queue arrives with the fraud engine.
        return await self._authorize(attempt, card, authentication=None)

    # --- authorization ------------------------------------------------------------------

    async def _authorize(
        self, attempt: _Attempt, card: CardDetails, authentication: StepUpResult | None
    ) -> PaymentResult:
        payment = attempt.payment
        issuer = self._issuers.route(card.pan)
        payment.issuer_name = issuer.settings.name
        now = self._clock()
        ends_at = maintenance_ends_at(issuer.settings.maintenance, now)
        if ends_at is not None:
            fail(payment, "failed", "issuer_maintenance", None, {"ends_at": ends_at.isoformat()})
            return await self._finish(attempt)

        payment.status = "authorizing"
        payment.rrn = new_rrn()
        payment.transmitted_at = now
        payment.eci = authentication.eci if authentication else None
        # Record the attempt before calling out: if this process dies mid-call, the sweep
        # finds it "authorizing" and reverses it.
        try:
            async with self._db.statements() as session:
                await self._store(session, attempt)
        except _Superseded:
            return await self._superseded(attempt)

        request = AuthorizationRequest(
            card=card,
            amount=payment.amount,
            currency=payment.currency,
            merchant_id=payment.merchant_id,
            rrn=payment.rrn,
            transmitted_at=now,
            authentication=authentication,
        )
        with metrics.ISSUER_SECONDS.labels(issuer.settings.name).time():
            try:
                reply = await issuer.connector.authorize(request)
            except IssuerUnreachable:
                fail(payment, "failed", "issuer_unreachable", None)
                return await self._finish(attempt)
            except IssuerTimeout as timeout:
                payment.stan = getattr(timeout, "stan", None)
                fail(payment, "failed", "issuer_timeout", None)
                return await self._finish_owing_reversal(attempt)
            except Exception as exc:
                # Not an answer and not a known failure (a bug, a codec limit): the request
                # may or may not have left, so treat it as sent and undo it.
                log.error("payment.issuer_call_failed", payment_id=payment.id, error=repr(exc))
                fail(payment, "failed", "issuer_system_error", None)
                return await self._finish_owing_reversal(attempt)

        payment.stan = reply.stan
        payment.issuer_response_code = reply.response_code
        outcome = outcome_for(reply.response_code, reply.additional)
        payment.internal_flags = [*payment.internal_flags, *outcome.flags]
        if outcome.status == "approved":
            payment.status = "approved"
            payment.approval_code = reply.approval_code
            payment.authorized_at = self._clock()
            if attempt.merchant.card_policy == "vault":
                # Only cards that paid are kept: no vault entry for declined or blocked
                # attempts (card testing would otherwise fill it).
                await self._keep_in_vault(attempt, card)
            return await self._finish(attempt)
        if outcome.status == "challenge_required":
            if authentication is not None:
                # The issuer still wants proof after a passed step-up: do not loop.
                fail(payment, "failed", "authentication_failed", None)
                return await self._finish(attempt)
            return await self._start_challenge(attempt, card, source="issuer")
        assert outcome.error_code is not None
        fail(payment, outcome.status, outcome.error_code, outcome.field)
        if outcome.reverse:
            return await self._finish_owing_reversal(attempt)
        return await self._finish(attempt)

    async def _finish_owing_reversal(self, attempt: _Attempt) -> PaymentResult:
        """Report the payment as not taken, with the reversal owed in the same write, so the
        customer is never charged for it; the reversal is sent at once and retried."""
        attempt.payment.reversal_status, attempt.payment.reversal_reason = "pending", "timeout"
        result = await self._finish(attempt)
        self._reversals.schedule(attempt.payment.id)
        return result

    async def _keep_in_vault(self, attempt: _Attempt, card: CardDetails) -> None:
        payment = attempt.payment
        async with self._db.transaction() as session:
            payment.card_token = await self._vault.store(
                session,
                merchant_id=attempt.merchant.id,
                pan=card.pan,
                fingerprint=payment.card_fingerprint or "",
                brand=payment.card_brand or "",
                masked=payment.card_masked or "",
                exp_month=card.exp_month,
                exp_year=card.exp_year,
            )

    # --- step-up ------------------------------------------------------------------------

    async def _start_challenge(
        self, attempt: _Attempt, card: CardDetails, *, source: str
    ) -> PaymentResult:
        payment = attempt.payment
        payment.status = "challenge_required"
        code = new_code()
        ttl = self._settings.otp_ttl_seconds
        challenge = PaymentChallenge(
            payment_id=payment.id,
            code_hash=code_hash(self._otp_key, payment.id, code),
            attempts=0,
            max_attempts=self._settings.otp_max_attempts,
            status="pending",
            source=source,
            expires_at=self._clock() + timedelta(seconds=ttl),
        )

        async def _also(session: AsyncSession) -> None:
            session.add(challenge)
            # Through the notification engine: inbox at once, push with SMS as its fallback.
            await send_notice(
                session,
                self._templates,
                customer_id=payment.customer_id,
                kind="payment_otp",
                category="security",
                context={
                    "merchant": attempt.merchant.name,
                    "amount": payment.amount,
                    "currency": payment.currency,
                    "otp": code,
                    "minutes": ttl // 60,
                },
                now=self._clock(),
                channels=("inbox", "push"),
                default_locale=attempt.locale,
            )

        result = await self._finish(attempt, extra=_also, challenge=challenge)
        if result.body.status == "challenge_required":
            # Held only once the step-up is on record (not for a retry that replayed).
            await self._pending.put(payment.id, card, ttl)
        return result

    async def complete_challenge(
        self, merchant_id: str | None, payment_id: str, otp: str, locale: Locale
    ) -> PaymentResult:
        async with self._db.transaction() as session:
            payment, challenge = await self._load_for_challenge(session, merchant_id, payment_id)
            merchant = await session.get(Merchant, payment.merchant_id)
            assert merchant is not None
            attempt = _Attempt(
                payment, merchant, locale, None, stored=repository.stored_state(payment)
            )
            if self._clock() >= challenge.expires_at:
                challenge.status = "failed"
                fail(payment, "failed", "challenge_expired", None)
                await self._pending.discard(payment.id)
                add_payment_event(session, payment, self._clock())
                return result_of(payment, self._catalog, locale)
            expected = code_hash(self._otp_key, payment.id, otp.strip())
            if not hmac.compare_digest(expected, challenge.code_hash):
                challenge.attempts += 1
                if challenge.attempts >= challenge.max_attempts:
                    challenge.status = "failed"
                    fail(payment, "failed", "authentication_failed", "otp")
                    await self._pending.discard(payment.id)
                    add_payment_event(session, payment, self._clock())
                    return result_of(payment, self._catalog, locale)
                body = payment_out(payment, self._catalog, locale, challenge=challenge)
                body.error = self._catalog.render_error(
                    "otp_incorrect",
                    locale,
                    field="otp",
                    params={"attempts_left": challenge.max_attempts - challenge.attempts},
                )
                return PaymentResult(self._catalog.entry("otp_incorrect").status, body)
            challenge.status = "passed"
            payment.status = "authorizing"  # claimed: a concurrent correct code gets a 409
            # Stamped now, so that recovery does not take the claim for an old, stuck call.
            payment.transmitted_at = self._clock()
        attempt.stored = repository.stored_state(payment)
        card = await self._pending.take(payment.id)
        if card is None:
            fail(payment, "failed", "challenge_expired", None)
            return await self._finish(attempt)
        return await self._authorize(attempt, card, step_up_result(payment.card_brand))

    async def _load_for_challenge(
        self, session: AsyncSession, merchant_id: str | None, payment_id: str
    ) -> tuple[Payment, PaymentChallenge]:
        payment = await repository.get_owned(session, merchant_id, payment_id, lock=True)
        challenge = await session.get(PaymentChallenge, payment_id, with_for_update=True)
        if payment.status != "challenge_required" or challenge is None:
            raise HaetaeError("challenge_not_pending", field="otp")
        return payment, challenge

    # --- cancel and read ----------------------------------------------------------------

    async def cancel(
        self, merchant_id: str | None, payment_id: str, locale: Locale
    ) -> PaymentResult:
        """Reverse an approved payment at its issuer. The reversal is recorded as owed before
        it is sent and only one sender at a time may send it, so concurrent cancels and the
        sweep never reverse twice. If the issuer does not confirm now, the answer says so
        (503, retryable) and the reversal is sent again until it is confirmed."""
        async with self._db.transaction() as session:
            payment = await repository.get_owned(session, merchant_id, payment_id, lock=True)
            if payment.status == "approved":
                payment.status = "cancelling"
                payment.reversal_status, payment.reversal_reason = "pending", "cancel"
            elif payment.status != "cancelling":
                raise HaetaeError(
                    "payment_not_cancellable", params={"status": PUBLIC_STATUS[payment.status]}
                )
        attempt = await self._reversals.reverse_once(payment.id)
        async with self._db.sessions() as session:
            current = await session.get(Payment, payment.id)
        assert current is not None
        if current.status != "cancelled":
            raise HaetaeError("cancel_not_confirmed")
        if not attempt.sent:
            log.info("payment.cancel_confirmed_by_other_sender", payment_id=payment.id)
        return result_of(current, self._catalog, locale)

    async def get(self, merchant_id: str | None, payment_id: str, locale: Locale) -> PaymentOut:
        async with self._db.sessions() as session:
            payment = await repository.get_owned(session, merchant_id, payment_id)
            challenge = await session.get(PaymentChallenge, payment_id)
        return payment_out(payment, self._catalog, locale, challenge=challenge)

    # --- persistence --------------------------------------------------------------------

    async def _store(self, session: Statements, attempt: _Attempt) -> None:
        if attempt.stored is not None:
            written = await repository.update_payment(
                session, attempt.payment, attempt.stored["status"], stored=attempt.stored
            )
            if not written:
                raise _Superseded(attempt.payment.id)
        else:
            if attempt.claim is not None:
                await self._idempotency.insert_claim(
                    session, attempt.merchant.id, attempt.claim, attempt.payment.id, self._clock()
                )
            await repository.insert_payment(session, attempt.payment)
            if attempt.record_risk is not None:
                attempt.record_risk(session)  # Statements hold buffered rows as sessions do
        attempt.stored = repository.stored_state(attempt.payment)

    async def _superseded(self, attempt: _Attempt) -> PaymentResult:
        """Answer with what was recorded meanwhile. If the issuer approved after all (a late
        answer), the customer must not stay charged for a payment reported as failed: a
        reversal is owed again."""
        payment = attempt.payment
        log.error("payment.superseded", payment_id=payment.id, late_outcome=payment.status)
        if payment.status == "approved":
            async with self._db.transaction() as session:
                await repository.owe_reversal(session, payment.id, reason="late")
            self._reversals.schedule(payment.id)
        async with self._db.sessions() as session:
            current = await session.get(Payment, payment.id)
        assert current is not None
        return result_of(current, self._catalog, attempt.locale)

    async def _finish(
        self,
        attempt: _Attempt,
        *,
        extra: Callable[[AsyncSession], Any] | None = None,
        challenge: PaymentChallenge | None = None,
    ) -> PaymentResult:
        """Write the payment's outcome, its event and the idempotent response together."""
        payment = attempt.payment
        result = result_of(payment, self._catalog, attempt.locale, challenge)
        # A step-up adds ORM rows and a notice: a session. Otherwise Core statements only.
        writes = self._db.statements() if extra is None else self._db.transaction()
        try:
            async with writes as session:
                await self._store(session, attempt)
                if extra is not None:
                    assert isinstance(session, AsyncSession)
                    await extra(session)
                add_payment_event(session, payment, self._clock())
                if attempt.claim is not None:
                    await IdempotencyKeys.complete(
                        session,
                        attempt.merchant.id,
                        attempt.claim.key,
                        result.stored_response(),
                    )
        except _Superseded:
            return await self._superseded(attempt)
        if attempt.observe is not None:
            outcome = {"approved": True, "declined": False}.get(payment.status)
            observe, attempt.observe = attempt.observe, None  # once, whatever path finishes
            await observe(outcome)
        metrics.PAYMENTS.labels(payment.status, payment.error_code or "").inc()
        log.info(
            "payment.finished",
            payment_id=payment.id,
            status=payment.status,
            card=payment.card_masked,
            error_code=payment.error_code,
            issuer_response=payment.issuer_response_code,
            flags=payment.internal_flags,
        )
        return result
