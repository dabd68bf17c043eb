"""Demo data for `haetae serve --demo`: a merchant of each card policy, keys, demo
customers' certificates (so the certificate page and the demo app inbox have something to
show), example risk rules and a few decisions waiting in the analysts' review queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from haetae.cases.schemas import FraudReportIn
from haetae.certificates.models import Certificate
from haetae.certificates.schedule import CertificateKind, add_years
from haetae.certificates.service import CertificateService, NewCertificate
from haetae.db.base import utcnow
from haetae.db.engine import Database
from haetae.merchants.service import get_or_create_merchant
from haetae.risk.decisions.models import DecisionRecord
from haetae.risk.events import Device, EventKind, Payee, RiskEvent
from haetae.security.api_keys import ALL_SCOPES, create_api_key
from haetae.security.models import ApiKey

if TYPE_CHECKING:
    from haetae.risk.rules.service import RuleBook
    from haetae.risk.service import RiskService
    from haetae.services import Services

DEMO_MERCHANT = "demo-shop"
DEMO_VAULT_MERCHANT = "demo-subscriptions"
# Every demo customer's id starts with this: the keyless demo pages serve no one else.
DEMO_CUSTOMER_PREFIX = "demo-"

# Whose certificate expires in 5 days: its D-7 reminder goes at registration, so the demo
# app shows an inbox item, an expiry banner and the login pop-up.
DEMO_EXPIRING_CUSTOMER = "demo-kim"
# Whose certificate is reissued on a device never seen before: a security alert banner.
DEMO_REISSUED_CUSTOMER = "demo-lee"
# Whose certificate is renewed in the app: a renewal notice.
DEMO_RENEWED_CUSTOMER = "demo-park"
# Certificates expiring over the next 12 weeks, for the chart: how many in each week.
DEMO_WEEKLY_EXPIRIES: tuple[int, ...] = (2, 3, 5, 4, 6, 3, 2, 4, 5, 3, 2, 1)

# The example rules (docs/rules.md): name, text, the event kinds (None: every kind).
DEMO_RULES: tuple[tuple[str, str, tuple[EventKind, ...] | None], ...] = (
    (
        "vp-large-new-payee",
        "block if amount > 3_000_000 and payee.is_new and hours_since_cert_reissue < 24",
        ("transfer",),
    ),
    ("many-cards-one-device", "challenge if device.distinct_cards_24h >= 5", ("payment",)),
    ("high-score", "review if score >= 70", None),
    ("new-payee-large-transfer", "review if payee.is_new and amount >= 1_000_000", ("transfer",)),
)
# Whose transfers to new payees wait in the review queue: hours ago, amount, payee account.
DEMO_RISK_CUSTOMER = "demo-choi"
DEMO_REVIEW_TRANSFERS: tuple[tuple[int, int, str], ...] = (
    (5, 1_200_000, "3333-01-1111111"),
    (3, 2_500_000, "110-222-333333"),
    (1, 1_800_000, "1002-345-678901"),
)


@dataclass(frozen=True)
class DemoKeys:
    merchant_key: str
    vault_merchant_key: str
    admin_key: str


DEMO_KEY_NAMES = (f"{DEMO_MERCHANT} demo", f"{DEMO_VAULT_MERCHANT} demo", "demo console")


async def seed_demo(services: Services) -> DemoKeys:
    """Merchants and fresh keys, then the demo certificates, rules and review decisions
    (once: a restart adds none). The keys printed by an earlier start are revoked: only a
    key's hash is stored, so they cannot be shown again, and an admin key nobody knows about
    should not stay valid."""
    async with services.db.transaction() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.name.in_(DEMO_KEY_NAMES), ApiKey.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        shop = await get_or_create_merchant(session, DEMO_MERCHANT, card_policy="none")
        subs = await get_or_create_merchant(session, DEMO_VAULT_MERCHANT, card_policy="vault")
        merchant_key = await create_api_key(
            session,
            kind="merchant",
            name=DEMO_KEY_NAMES[0],
            scopes=["payments"],
            merchant_id=shop.id,
        )
        vault_key = await create_api_key(
            session,
            kind="merchant",
            name=DEMO_KEY_NAMES[1],
            scopes=["payments"],
            merchant_id=subs.id,
        )
        admin_key = await create_api_key(
            session, kind="service", name=DEMO_KEY_NAMES[2], scopes=list(ALL_SCOPES)
        )
    now = utcnow()
    await seed_demo_certificates(services.db, services.certificates, now)
    await seed_demo_rules(services.rules)
    await seed_demo_reviews(services.db, services.risk, now)
    await seed_demo_cases(services)
    return DemoKeys(merchant_key, vault_key, admin_key)


# Demo fraud reports: (Idempotency-Key, report). The keys make a restart add none.
DEMO_REPORTS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "demo-case-voice-phishing",
        {
            "kind": "voice_phishing",
            "reporter": {"customer_id": "demo-customer-1"},
            "victim": {"customer_id": "demo-customer-1", "account_number": "3333-01-0000001"},
            "suspect_accounts": [
                {"bank_code": "090", "account_number": "3333-09-8765432", "amount": 3_000_000},
                {"bank_code": "088", "account_number": "110-555-123456", "amount": 2_000_000},
            ],
            "amount": 5_000_000,
            "description": "검찰 수사관을 사칭한 전화를 받고 '안전계좌'로 이체했습니다.",
        },
    ),
    (
        "demo-case-smishing",
        {
            "kind": "smishing",
            "reporter": {"phone": "010-2000-0002"},
            "suspect_phones": ["010-9999-1234"],
            "suspect_accounts": [{"bank_code": "004", "account_number": "123-45-678901"}],
            "amount": 450_000,
            "description": "택배 주소 확인 문자의 링크를 눌렀더니 소액결제가 되었습니다.",
        },
    ),
    (
        "demo-case-lost-card",
        {
            "kind": "lost_card",
            "reporter": {"customer_id": "demo-customer-3"},
            "victim": {"customer_id": "demo-customer-3", "card_id": "demo-card-fingerprint-3"},
            "description": "지갑을 잃어버렸습니다.",
        },
    ),
)


async def seed_demo_cases(services: Services) -> int:
    """A few reports, through the case service like any report (actions, notices, lists)."""
    opened = 0
    for key, body in DEMO_REPORTS:
        _, new = await services.cases.report(
            FraudReportIn.model_validate(body), reported_by="demo", idempotency_key=key
        )
        opened += int(new)
    return opened


async def seed_demo_rules(rules: RuleBook) -> int:
    """The example rules, through the rule book, when there is no rule at all yet (an
    analyst's rules are never touched). Returns how many were saved."""
    if await rules.all():
        return 0
    for name, text, kinds in DEMO_RULES:
        await rules.save(name, text, author="demo", kinds=list(kinds) if kinds else None)
    return len(DEMO_RULES)


async def seed_demo_reviews(db: Database, risk: RiskService, now: datetime) -> int:
    """Transfers of DEMO_RISK_CUSTOMER to new payees, decided by the real engine (with the
    demo rules, ``review``), when that customer has no decision yet. Returns how many
    events were evaluated."""
    async with db.sessions() as session:
        decided = await session.scalar(
            select(func.count())
            .select_from(DecisionRecord)
            .where(DecisionRecord.customer_id == DEMO_RISK_CUSTOMER)
        )
    if decided:
        return 0
    for hours_ago, amount, account in DEMO_REVIEW_TRANSFERS:
        await risk.evaluate(
            RiskEvent(
                kind="transfer",
                customer_id=DEMO_RISK_CUSTOMER,
                occurred_at=now - timedelta(hours=hours_ago),
                amount=amount,
                payee=Payee(bank_code="088", account_number=account),
                device=Device(id=f"{DEMO_RISK_CUSTOMER}-phone", ip="203.0.113.24"),
            )
        )
    return len(DEMO_REVIEW_TRANSFERS)


def _certificate(
    customer_id: str,
    kind: CertificateKind,
    not_after: datetime,
    device_name: str,
) -> NewCertificate:
    """A certificate as the bank's app reports it, expiring at ``not_after``."""
    years = 1 if kind == "joint" else 3
    return NewCertificate(
        customer_id=customer_id,
        kind=kind,
        device_id=f"{customer_id}-phone",
        device_name=device_name,
        issued_at=add_years(not_after, -years),
        not_after=not_after,
    )


def demo_chart_certificates(now: datetime) -> list[NewCertificate]:
    """The chart's certificates: DEMO_WEEKLY_EXPIRIES spread over each week, every third
    one a financial certificate (they are rarer than joint ones)."""
    planned: list[NewCertificate] = []
    for week, count in enumerate(DEMO_WEEKLY_EXPIRIES):
        for n in range(count):
            number = len(planned) + 1
            # Spread over the week's days and hours; the first lands a day from now.
            offset = timedelta(days=week * 7 + 1 + (n * 5) % 7, hours=(number * 7) % 12)
            kind: CertificateKind = "financial" if number % 3 == 0 else "joint"
            planned.append(_certificate(f"demo-c{number:02d}", kind, now + offset, "Galaxy S24"))
    return planned


async def seed_demo_certificates(
    db: Database, certificates: CertificateService, now: datetime
) -> int:
    """Register the demo certificates through the service, so their reminders, notices and
    banners are the real ones; a customer who already has a certificate is skipped.
    Returns how many certificates were registered."""
    chart = demo_chart_certificates(now)
    customers = [
        DEMO_EXPIRING_CUSTOMER,
        DEMO_REISSUED_CUSTOMER,
        DEMO_RENEWED_CUSTOMER,
        *(c.customer_id for c in chart),
    ]
    async with db.sessions() as session:
        seeded = set(
            await session.scalars(
                select(Certificate.customer_id).where(Certificate.customer_id.in_(customers))
            )
        )
    registered = 0
    if DEMO_EXPIRING_CUSTOMER not in seeded:
        await certificates.register(
            _certificate(DEMO_EXPIRING_CUSTOMER, "joint", now + timedelta(days=5), "Galaxy S23")
        )
        registered += 1
    if DEMO_REISSUED_CUSTOMER not in seeded:
        held = await certificates.register(
            _certificate(
                DEMO_REISSUED_CUSTOMER, "financial", now + timedelta(days=400), "iPhone 14"
            )
        )
        await certificates.reissue(
            held.certificate.id, device_id="demo-unknown-device", device_name="SM-A515F"
        )
        registered += 1
    if DEMO_RENEWED_CUSTOMER not in seeded:
        held = await certificates.register(
            _certificate(DEMO_RENEWED_CUSTOMER, "joint", now + timedelta(days=12), "Galaxy Z")
        )
        await certificates.renew(
            held.certificate.id,
            not_after=add_years(held.certificate.not_after, 1),
            method="app",
        )
        registered += 1
    for new in chart:
        if new.customer_id not in seeded:
            await certificates.register(new)
            registered += 1
    return registered
