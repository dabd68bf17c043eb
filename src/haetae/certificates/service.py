"""Certificate use cases: register, renew, reissue, revoke, and what the customer is told.

Every change is one transaction: the certificate row, its history, its reminder schedule,
the notices it causes and the outbox event (``certificate.*``) commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.bus.outbox import add_event
from haetae.catalog import Locale
from haetae.certificates import reminders
from haetae.certificates.banners import Banner, current_banners
from haetae.certificates.models import Certificate, CertificateEvent, CertificateReminder
from haetae.certificates.pem import ParsedCertificate
from haetae.certificates.schedule import CertificateKind, expiry_for
from haetae.certificates.settings import CertificateSettings
from haetae.db.base import new_id
from haetae.db.engine import Database
from haetae.errors import HaetaeError
from haetae.notify.channels.base import ChannelName
from haetae.notify.notices import send_notice
from haetae.notify.service import take_down_banners
from haetae.notify.templates import NoticeTemplates

RenewalMethod = Literal["app", "web", "auto"]
# Every channel: a renewal or a reissue the customer did not make must reach them at once.
SECURITY_CHANNELS: tuple[ChannelName, ...] = ("inbox", "push", "sms", "email")


@dataclass(frozen=True, slots=True)
class NewCertificate:
    """A certificate to register, from a PEM or from the metadata of a Korean kind."""

    customer_id: str
    kind: CertificateKind
    device_id: str
    issued_at: datetime
    not_after: datetime
    device_name: str | None = None
    parsed: ParsedCertificate | None = None

    @classmethod
    def from_pem(
        cls,
        customer_id: str,
        parsed: ParsedCertificate,
        device_id: str,
        *,
        kind: CertificateKind = "joint",
        device_name: str | None = None,
    ) -> NewCertificate:
        return cls(
            customer_id=customer_id,
            kind=kind,
            device_id=device_id,
            device_name=device_name,
            issued_at=parsed.not_before,
            not_after=parsed.not_after,
            parsed=parsed,
        )

    @classmethod
    def from_metadata(
        cls,
        customer_id: str,
        kind: CertificateKind,
        issued_at: datetime,
        device_id: str,
        *,
        device_name: str | None = None,
    ) -> NewCertificate:
        return cls(
            customer_id=customer_id,
            kind=kind,
            device_id=device_id,
            device_name=device_name,
            issued_at=issued_at,
            not_after=expiry_for(kind, issued_at),
        )


@dataclass(frozen=True, slots=True)
class Registered:
    certificate: Certificate
    created: bool  # False: already registered (the same PEM, or kind and issue time)


def _expired_error(not_after: datetime) -> HaetaeError:
    return HaetaeError(
        "certificate_already_expired",
        field="not_after",
        params={"not_after": not_after.isoformat()},
    )


class CertificateService:
    def __init__(
        self,
        db: Database,
        templates: NoticeTemplates,
        *,
        clock: Callable[[], datetime],
        settings: CertificateSettings | None = None,
    ) -> None:
        self._db = db
        self._templates = templates
        self._clock = clock
        self.settings = settings or CertificateSettings()

    # --- reading ---------------------------------------------------------------------

    async def get(self, certificate_id: str) -> tuple[Certificate, list[CertificateEvent]]:
        async with self._db.sessions() as session:
            certificate = await session.get(Certificate, certificate_id)
            if certificate is None:
                raise HaetaeError("certificate_not_found", field="certificate_id")
            history = list(
                await session.scalars(
                    select(CertificateEvent)
                    .where(CertificateEvent.certificate_id == certificate_id)
                    .order_by(CertificateEvent.id)
                )
            )
        return certificate, history

    async def for_customer(self, customer_id: str) -> list[Certificate]:
        async with self._db.sessions() as session:
            return list(
                await session.scalars(
                    select(Certificate)
                    .where(Certificate.customer_id == customer_id)
                    .order_by(Certificate.not_after, Certificate.id)
                )
            )

    async def pending_reminders(self, certificate_id: str) -> list[CertificateReminder]:
        async with self._db.sessions() as session:
            return list(
                await session.scalars(
                    select(CertificateReminder)
                    .where(CertificateReminder.certificate_id == certificate_id)
                    .order_by(CertificateReminder.due_at)
                )
            )

    async def banners(
        self, session: AsyncSession, customer_id: str, locale: Locale
    ) -> list[Banner]:
        """What the customer's app shows now (banners; the first is the login pop-up)."""
        return await current_banners(
            session, self._templates, self.settings, customer_id, self._clock(), locale
        )

    # --- changes ---------------------------------------------------------------------

    async def register(self, new: NewCertificate, *, locale: Locale = "ko") -> Registered:
        now = self._clock()
        if new.not_after <= now:
            raise _expired_error(new.not_after)
        async with self._db.transaction() as session:
            # A repeat (a client's retry, the same PEM twice) answers with the first.
            same = (
                Certificate.fingerprint_sha256 == new.parsed.fingerprint_sha256
                if new.parsed is not None
                else (Certificate.kind == new.kind) & (Certificate.issued_at == new.issued_at)
            )
            existing = await session.scalar(
                select(Certificate).where(Certificate.customer_id == new.customer_id, same)
            )
            if existing is not None:
                return Registered(existing, created=False)
            certificate = await self.add(session, new, now)
            # A reminder already due (six days left: D-7) goes now, in this transaction.
            await reminders.send_due(
                session,
                self._templates,
                self.settings,
                now,
                certificate_id=certificate.id,
                default_locale=locale,
            )
        return Registered(certificate, created=True)

    async def add(self, session: AsyncSession, new: NewCertificate, now: datetime) -> Certificate:
        """Insert a certificate, its history and its reminder plan."""
        row = certificate_row(new, now)
        certificate = Certificate(**row)
        session.add(certificate)
        await session.flush()  # the reminders' foreign key needs the row
        session.add(registered_event(row, now))
        await reminders.plan_for(session, self.settings, [(certificate.id, new.not_after)], now)
        announce_registered(session, row)
        return certificate

    async def renew(
        self,
        certificate_id: str,
        *,
        not_after: datetime,
        method: RenewalMethod,
        locale: Locale = "ko",
    ) -> Certificate:
        now = self._clock()
        async with self._db.transaction() as session:
            certificate = await self._locked(session, certificate_id)
            if certificate.status == "revoked":
                raise HaetaeError("certificate_revoked", status_code=409)
            if certificate.not_after <= now:
                raise _expired_error(certificate.not_after)
            if not_after <= certificate.not_after:
                raise HaetaeError(
                    "request_invalid",
                    field="not_after",
                    params={
                        "field": "not_after",
                        "detail": "a renewal must extend the validity past "
                        + certificate.not_after.isoformat(),
                    },
                )
            await self._replan(session, certificate, not_after, now, reason="renewed")
            certificate.renewed_at = now
            certificate.updated_at = now
            session.add(
                CertificateEvent(
                    certificate_id=certificate.id,
                    kind="renewed",
                    method=method,
                    not_after=not_after,
                    at=now,
                )
            )
            await self._security_notice(
                session,
                certificate,
                "certificate_renewed",
                {"renewed_at": now, "method": method, "not_after": not_after},
                now,
                locale,
            )
            add_event(
                session,
                "certificate.renewed",
                {
                    "certificate_id": certificate.id,
                    "customer_id": certificate.customer_id,
                    "method": method,
                    "not_after": not_after.isoformat(),
                },
            )
        return certificate

    async def reissue(
        self,
        certificate_id: str,
        *,
        device_id: str,
        device_name: str | None = None,
        parsed: ParsedCertificate | None = None,
        locale: Locale = "ko",
    ) -> Certificate:
        """A new certificate in place of the old one, usually on another device.

        On a device this customer has never held a certificate on, the customer gets an
        immediate security notice: reissuing a certificate on the fraudster's phone is the
        classic first step of voice phishing. The ``certificate.reissued`` event carries the
        same facts for the fraud engine.
        """
        now = self._clock()
        async with self._db.transaction() as session:
            certificate = await self._locked(session, certificate_id)
            previous_device = certificate.device_id
            known_devices = set(
                await session.scalars(
                    select(CertificateEvent.device_id)
                    .join(Certificate, Certificate.id == CertificateEvent.certificate_id)
                    .where(Certificate.customer_id == certificate.customer_id)
                )
            )
            new_device = device_id not in known_devices
            if parsed is not None:
                not_after = parsed.not_after
            elif certificate.not_after > now:
                not_after = certificate.not_after  # a reissue keeps the expiry date
            else:
                not_after = expiry_for(_kind(certificate.kind), now)  # expired: a new term
            if not_after <= now:
                raise _expired_error(not_after)
            if not_after != certificate.not_after:
                await self._replan(session, certificate, not_after, now, reason="reissued")
            if parsed is not None:
                certificate.source = "pem"
                certificate.serial, certificate.subject = parsed.serial, parsed.subject
                certificate.issuer = parsed.issuer
                certificate.fingerprint_sha256 = parsed.fingerprint_sha256
            certificate.device_id, certificate.device_name = device_id, device_name
            certificate.issued_at = parsed.not_before if parsed else now
            certificate.status, certificate.revoked_at = "active", None
            certificate.reissued_at = certificate.updated_at = now
            session.add(
                CertificateEvent(
                    certificate_id=certificate.id,
                    kind="reissued",
                    device_id=device_id,
                    not_after=not_after,
                    at=now,
                )
            )
            notification_id = None
            if device_id != previous_device:
                notification_id = await self._security_notice(
                    session,
                    certificate,
                    "certificate_reissued",
                    {
                        "reissued_at": now,
                        "device_name": device_name or device_id,
                        "report_url": self.settings.report_url,
                    },
                    now,
                    locale,
                )
            add_event(
                session,
                "certificate.reissued",
                {
                    "certificate_id": certificate.id,
                    "customer_id": certificate.customer_id,
                    "kind": certificate.kind,
                    "device_id": device_id,
                    "previous_device_id": previous_device,
                    "new_device": new_device,
                    "reissued_at": now.isoformat(),
                    "notification_id": notification_id,
                },
            )
        return certificate

    async def revoke(self, certificate_id: str) -> Certificate:
        now = self._clock()
        async with self._db.transaction() as session:
            certificate = await self._locked(session, certificate_id)
            await self.revoke_in(session, certificate, now)
        return certificate

    @staticmethod
    async def revoke_in(session: AsyncSession, certificate: Certificate, now: datetime) -> None:
        """Revoke in the caller's transaction (a fraud case revokes with its other actions);
        the certificate row should be locked by the caller."""
        if certificate.status == "revoked":
            return
        await reminders.skip_pending(session, certificate.id, now, reason="revoked")
        await take_down_banners(
            session,
            certificate.customer_id,
            kind="certificate_expiring",
            subject=certificate.id,
        )
        certificate.status, certificate.revoked_at = "revoked", now
        certificate.updated_at = now
        session.add(CertificateEvent(certificate_id=certificate.id, kind="revoked", at=now))
        add_event(
            session,
            "certificate.revoked",
            {"certificate_id": certificate.id, "customer_id": certificate.customer_id},
        )

    # --- helpers ---------------------------------------------------------------------

    async def _security_notice(
        self,
        session: AsyncSession,
        certificate: Certificate,
        kind: str,
        context: dict[str, Any],
        now: datetime,
        locale: Locale,
    ) -> str:
        """A notice on every channel about this certificate, with whom to call."""
        return await send_notice(
            session,
            self._templates,
            customer_id=certificate.customer_id,
            kind=kind,
            category="security",
            context={
                "certificate_kind": certificate.kind,
                "contact_phone": self.settings.contact_phone,
                **context,
            },
            now=now,
            channels=SECURITY_CHANNELS,
            default_locale=locale,
            subject=certificate.id,
        )

    @staticmethod
    async def _locked(session: AsyncSession, certificate_id: str) -> Certificate:
        certificate = await session.get(Certificate, certificate_id, with_for_update=True)
        if certificate is None:
            raise HaetaeError("certificate_not_found", field="certificate_id")
        return certificate

    async def _replan(
        self,
        session: AsyncSession,
        certificate: Certificate,
        not_after: datetime,
        now: datetime,
        *,
        reason: str,
    ) -> None:
        """The old expiry's reminders and banners stop; the new expiry's are planned."""
        await reminders.skip_pending(session, certificate.id, now, reason=reason)
        await take_down_banners(
            session, certificate.customer_id, kind="certificate_expiring", subject=certificate.id
        )
        certificate.not_after = not_after
        await reminders.plan_for(session, self.settings, [(certificate.id, not_after)], now)
        await reminders.send_due(
            session, self._templates, self.settings, now, certificate_id=certificate.id
        )


def _kind(value: str) -> CertificateKind:
    return "financial" if value == "financial" else "joint"


def certificate_row(new: NewCertificate, now: datetime) -> dict[str, Any]:
    """A new certificate's columns (one registration, or a row of a bulk import)."""
    parsed = new.parsed
    return {
        "id": new_id("crt"),
        "customer_id": new.customer_id,
        "kind": new.kind,
        "source": "pem" if parsed else "metadata",
        "serial": parsed.serial if parsed else None,
        "subject": parsed.subject if parsed else None,
        "issuer": parsed.issuer if parsed else None,
        "fingerprint_sha256": parsed.fingerprint_sha256 if parsed else None,
        "device_id": new.device_id,
        "device_name": new.device_name,
        "status": "active",
        "issued_at": new.issued_at,
        "not_after": new.not_after,
        "renewed_at": None,
        "reissued_at": None,
        "revoked_at": None,
        "created_at": now,
        "updated_at": now,
    }


def registered_event(
    row: dict[str, Any], now: datetime, method: str | None = None
) -> CertificateEvent:
    return CertificateEvent(
        certificate_id=row["id"],
        kind="registered",
        device_id=row["device_id"],
        method=method,
        not_after=row["not_after"],
        at=now,
    )


def announce_registered(session: AsyncSession, row: dict[str, Any]) -> None:
    add_event(
        session,
        "certificate.registered",
        {
            "certificate_id": row["id"],
            "customer_id": row["customer_id"],
            "kind": row["kind"],
            "device_id": row["device_id"],
            "not_after": row["not_after"].isoformat(),
        },
    )
