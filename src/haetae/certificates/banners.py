"""What the app shows on its home screen and at login: computed from the state now, so a
banner disappears the moment the certificate it warns about is renewed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.catalog import Locale
from haetae.certificates import schedule
from haetae.certificates.models import Certificate
from haetae.certificates.settings import CertificateSettings
from haetae.notify.models import Customer, InboxItem
from haetae.notify.templates import NoticeTemplates

# Security alerts first (a reissue the customer may not have made), then expiring
# certificates, soonest first.
_ALERT_KINDS = ("certificate_reissued", "fraud_report_received")


@dataclass(frozen=True, slots=True)
class Banner:
    kind: str
    title: str
    text: str
    certificate_id: str | None = None
    inbox_item_id: str | None = None


async def current_banners(
    session: AsyncSession,
    templates: NoticeTemplates,
    settings: CertificateSettings,
    customer_id: str,
    now: datetime,
    default_locale: Locale,
) -> list[Banner]:
    customer = await session.get(Customer, customer_id)
    locale: Locale = default_locale
    if customer is not None:
        locale = "en" if customer.locale == "en" else "ko"
    alerts = [
        Banner(
            kind=item.kind,
            title=item.title,
            text=item.banner_text or item.body,
            inbox_item_id=item.id,
        )
        for item in await session.scalars(
            select(InboxItem)
            .where(
                InboxItem.customer_id == customer_id,
                InboxItem.kind.in_(_ALERT_KINDS),
                InboxItem.banner.is_(True),
                InboxItem.read.is_(False),
                InboxItem.dismissed.is_(False),
            )
            .order_by(InboxItem.created_at.desc())
        )
    ]
    expiring = []
    for certificate in await session.scalars(
        select(Certificate)
        .where(
            Certificate.customer_id == customer_id,
            Certificate.status == "active",
            Certificate.not_after > now,
            Certificate.not_after <= now + schedule.RENEWAL_WINDOW + timedelta(days=1),
        )
        .order_by(Certificate.not_after)
    ):
        if not schedule.renewal_window_open(now, certificate.not_after):
            continue
        rendered = templates.render(
            "certificate_expiring",
            locale,
            {
                "certificate_kind": certificate.kind,
                "not_after": certificate.not_after,
                "days_left": schedule.days_left(now, certificate.not_after),
                "renew_url": settings.renew_url,
            },
        )
        expiring.append(
            Banner(
                kind="certificate_expiring",
                title=rendered.title,
                text=rendered.banner or rendered.short,
                certificate_id=certificate.id,
            )
        )
    return alerts + expiring
