"""Certificate routes for the bank's systems (service keys with the ``certificates`` scope);
the banners route is the app's, with the inbox (``notify`` scope)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from haetae.certificates.models import Certificate, CertificateEvent, CertificateReminder
from haetae.certificates.pem import ParsedCertificate, PemError, parse_pem
from haetae.certificates.schedule import days_left, renewal_window_open
from haetae.certificates.schemas import (
    BannerOut,
    BannersOut,
    CertificateIn,
    CertificateOut,
    CertificatesOut,
    HistoryOut,
    ReissueIn,
    ReminderOut,
    RenewIn,
)
from haetae.certificates.service import NewCertificate
from haetae.deps import LocaleDep, ServicesDep, require_scope
from haetae.errors import HaetaeError
from haetae.security.api_keys import Principal

router = APIRouter(tags=["certificates"])
CertificatesPrincipal = Annotated[Principal, Depends(require_scope("certificates"))]
NotifyPrincipal = Annotated[Principal, Depends(require_scope("notify"))]
CLOCK_SKEW = timedelta(minutes=5)


def _invalid(field: str, detail: str) -> HaetaeError:
    return HaetaeError("request_invalid", field=field, params={"field": field, "detail": detail})


def _parse(pem: str) -> ParsedCertificate:
    try:
        return parse_pem(pem)
    except PemError as error:
        raise HaetaeError(
            "certificate_pem_invalid", field="pem", params={"detail": str(error)}
        ) from None


def certificate_out(
    certificate: Certificate,
    now: datetime,
    *,
    reminders: list[CertificateReminder] | None = None,
    history: list[CertificateEvent] | None = None,
) -> CertificateOut:
    status = certificate.status
    if status == "active" and certificate.not_after <= now:
        status = "expired"
    return CertificateOut(
        id=certificate.id,
        customer_id=certificate.customer_id,
        kind=certificate.kind,
        source=certificate.source,
        serial=certificate.serial,
        subject=certificate.subject,
        issuer=certificate.issuer,
        fingerprint_sha256=certificate.fingerprint_sha256,
        device_id=certificate.device_id,
        device_name=certificate.device_name,
        status=status,
        issued_at=certificate.issued_at,
        not_after=certificate.not_after,
        days_left=max(days_left(now, certificate.not_after), 0),
        renewal_window_open=status == "active" and renewal_window_open(now, certificate.not_after),
        renewed_at=certificate.renewed_at,
        reissued_at=certificate.reissued_at,
        revoked_at=certificate.revoked_at,
        reminders=None
        if reminders is None
        else [
            ReminderOut(
                days_before=r.days_before, due_at=r.due_at, status=r.status, reason=r.reason
            )
            for r in reminders
            if r.not_after == certificate.not_after
        ],
        history=None
        if history is None
        else [
            HistoryOut(
                kind=e.kind, at=e.at, device_id=e.device_id, method=e.method, not_after=e.not_after
            )
            for e in history
        ],
    )


async def _detailed(services: ServicesDep, certificate_id: str) -> CertificateOut:
    certificate, history = await services.certificates.get(certificate_id)
    reminders = await services.certificates.pending_reminders(certificate_id)
    return certificate_out(certificate, services.clock(), reminders=reminders, history=history)


@router.post("/v1/certificates", response_model=CertificateOut, status_code=201)
async def register_certificate(
    body: CertificateIn,
    response: Response,
    services: ServicesDep,
    locale: LocaleDep,
    _: CertificatesPrincipal,
) -> CertificateOut:
    now = services.clock()
    if body.pem is not None:
        if body.issued_at is not None:
            raise _invalid("issued_at", "give either pem or issued_at, not both")
        new = NewCertificate.from_pem(
            body.customer_id,
            _parse(body.pem),
            body.device_id,
            kind=body.kind or "joint",
            device_name=body.device_name,
        )
    else:
        if body.kind is None:
            raise _invalid("kind", "give pem, or kind (joint or financial) with issued_at")
        if body.issued_at is None:
            raise _invalid("issued_at", "required with kind")
        if body.issued_at > now + CLOCK_SKEW:
            raise _invalid("issued_at", "is in the future")
        new = NewCertificate.from_metadata(
            body.customer_id,
            body.kind,
            body.issued_at,
            body.device_id,
            device_name=body.device_name,
        )
    registered = await services.certificates.register(new, locale=locale)
    if not registered.created:
        response.status_code = 200  # the same PEM again: the certificate already registered
    return await _detailed(services, registered.certificate.id)


@router.get("/v1/certificates/{certificate_id}", response_model=CertificateOut)
async def get_certificate(
    certificate_id: str, services: ServicesDep, _: CertificatesPrincipal
) -> CertificateOut:
    return await _detailed(services, certificate_id)


@router.post("/v1/certificates/{certificate_id}/renew", response_model=CertificateOut)
async def renew_certificate(
    certificate_id: str,
    body: RenewIn,
    services: ServicesDep,
    locale: LocaleDep,
    _: CertificatesPrincipal,
) -> CertificateOut:
    await services.certificates.renew(
        certificate_id, not_after=body.not_after, method=body.method, locale=locale
    )
    return await _detailed(services, certificate_id)


@router.post("/v1/certificates/{certificate_id}/reissue", response_model=CertificateOut)
async def reissue_certificate(
    certificate_id: str,
    body: ReissueIn,
    services: ServicesDep,
    locale: LocaleDep,
    _: CertificatesPrincipal,
) -> CertificateOut:
    await services.certificates.reissue(
        certificate_id,
        device_id=body.device_id,
        device_name=body.device_name,
        parsed=_parse(body.pem) if body.pem is not None else None,
        locale=locale,
    )
    return await _detailed(services, certificate_id)


@router.post("/v1/certificates/{certificate_id}/revoke", response_model=CertificateOut)
async def revoke_certificate(
    certificate_id: str, services: ServicesDep, _: CertificatesPrincipal
) -> CertificateOut:
    await services.certificates.revoke(certificate_id)
    return await _detailed(services, certificate_id)


@router.get("/v1/customers/{customer_id}/certificates", response_model=CertificatesOut)
async def customer_certificates(
    customer_id: str, services: ServicesDep, _: CertificatesPrincipal
) -> CertificatesOut:
    now = services.clock()
    certificates = await services.certificates.for_customer(customer_id)
    return CertificatesOut(certificates=[certificate_out(c, now) for c in certificates])


@router.get("/v1/customers/{customer_id}/banners", response_model=BannersOut)
async def customer_banners(
    customer_id: str, services: ServicesDep, locale: LocaleDep, _: NotifyPrincipal
) -> BannersOut:
    async with services.db.sessions() as session:
        banners = await services.certificates.banners(session, customer_id, locale)
    out = [BannerOut.model_validate(b, from_attributes=True) for b in banners]
    return BannersOut(banners=out, login_popup=out[0] if out else None)
