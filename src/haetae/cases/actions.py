"""Protective actions: what a report sets in motion at once, in the report's transaction.

Each action is a row saying who took it, why and when, and most also put a value on a list
the fraud rules read (``@mule_accounts``, ``@held_customers``, ``@blocked_cards``, ...), so
the next transfer or payment that touches it is stopped by the engine itself. Actions on
systems Haetae does not own (the core banking ledger's suspension flag, the card system's
block, another bank) go out as outbox events for those systems to apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haetae.bus.outbox import add_event
from haetae.cases import audit
from haetae.cases.models import Case, ProtectiveAction
from haetae.cases.schemas import FraudReportIn
from haetae.certificates.models import Certificate
from haetae.certificates.service import CertificateService
from haetae.db.base import new_id
from haetae.payments.models import VaultCard
from haetae.risk.rules import repository as lists

MULE_ACCOUNTS = "mule_accounts"
MULE_DEVICES = "mule_devices"
REPORTED_PHONES = "reported_phones"
HELD_CUSTOMERS = "held_customers"
BLOCKED_CARDS = "blocked_cards"

# The rules that make the lists bite, created when the first report arrives if an analyst
# has not written rules of these names: (name, text, event kinds).
PROTECTION_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "reported_account",
        f"block if payee.account in @{MULE_ACCOUNTS}",
        ("transfer", "payee_added"),
    ),
    ("reported_device", f"block if device.id in @{MULE_DEVICES}", ("transfer", "payment", "login")),
    ("held_customer", f"review if customer_id in @{HELD_CUSTOMERS}", ("transfer",)),
    ("blocked_card", f"block if card_id in @{BLOCKED_CARDS}", ("payment",)),
)
PROTECTION_LISTS = (MULE_ACCOUNTS, MULE_DEVICES, REPORTED_PHONES, HELD_CUSTOMERS, BLOCKED_CARDS)

# Telecom financial fraud moves money by transfer: hold the victim's pending transfers.
TRANSFER_FRAUD = frozenset(
    {"voice_phishing", "smishing", "messenger_impersonation", "account_takeover"}
)
CARD_KINDS = frozenset({"card_fraud", "lost_card"})
# Which list each action type put its value on, so lifting it takes the value off.
LIST_OF_ACTION = {
    "mule_list_entry": MULE_ACCOUNTS,
    "device_list_entry": MULE_DEVICES,
    "phone_list_entry": REPORTED_PHONES,
    "transfer_hold": HELD_CUSTOMERS,
    "card_block": BLOCKED_CARDS,
}


@dataclass(frozen=True, slots=True)
class ActionPolicy:
    institution_code: str
    # Certificates reissued this recently are revoked on an account-takeover report.
    reissue_window: timedelta = timedelta(days=3)


def account_values(account_number: str) -> list[str]:
    """The forms a rule may meet an account number in: as written and digits only."""
    return sorted({account_number, account_number.replace("-", "")})


class ActionTaker:
    """Takes the actions for one case inside its transaction and records each in the trail."""

    def __init__(self, session: AsyncSession, case: Case, *, actor: str, now: datetime) -> None:
        self._session = session
        self.case = case
        self._actor = actor
        self.now = now
        self.taken: list[ProtectiveAction] = []
        # What the rules' lists gained, and how many list revisions that bumped: the rule
        # book applies them in memory instead of reloading everything (RuleBook.extend_lists).
        self.list_additions: dict[str, set[str]] = {}
        self.list_touches = 0

    @property
    def lists_changed(self) -> bool:
        return self.list_touches > 0

    async def take(
        self,
        type_: str,
        target: str,
        reason: str,
        *,
        status: str = "active",
        detail: dict[str, object] | None = None,
        list_values: Sequence[str] = (),
    ) -> ProtectiveAction:
        action = ProtectiveAction(
            id=new_id("act"),
            case_id=self.case.id,
            type=type_,
            target=target,
            status=status,
            reason=reason,
            detail={
                **(detail or {}),
                **({"list_values": list(list_values)} if list_values else {}),
            },
            taken_by=self._actor,
            taken_at=self.now,
        )
        self._session.add(action)
        if list_values:
            name = LIST_OF_ACTION[type_]
            await lists.add_to_list(self._session, name, list_values, self.now)
            self.list_additions.setdefault(name, set()).update(list_values)
            self.list_touches += 1
        await audit.append(
            self._session,
            self.case.id,
            actor=self._actor,
            type_="action_taken",
            detail={"action_id": action.id, "type": type_, "target": target, "status": status},
            at=self.now,
        )
        self.taken.append(action)
        return action


async def take_report_actions(
    taker: ActionTaker, session: AsyncSession, report: FraudReportIn, policy: ActionPolicy
) -> None:
    case = taker.case
    for account in report.suspect_accounts:
        target = f"{account.bank_code}:{account.account_number}"
        if account.bank_code == policy.institution_code:
            action = await taker.take(
                "payment_suspension",
                target,
                "reported as the account the victim's money went to (지급정지, Refund Act §4①)",
            )
            add_event(
                session,
                "account.payment_suspended",
                {
                    "case_id": case.id,
                    "action_id": action.id,
                    "account_number": account.account_number,
                },
            )
        else:
            action = await taker.take(
                "suspension_request",
                target,
                "held at another bank: its payment suspension is requested (Refund Act §3④)",
                status="requested",
                detail={"bank_code": account.bank_code},
            )
            add_event(
                session,
                "account.suspension_requested",
                {
                    "case_id": case.id,
                    "action_id": action.id,
                    "bank_code": account.bank_code,
                    "account_number": account.account_number,
                },
            )
        await taker.take(
            "mule_list_entry",
            target,
            "reported account: transfers to it are blocked",
            list_values=account_values(account.account_number),
        )
    for device in sorted(set(report.suspect_devices)):
        await taker.take("device_list_entry", device, "reported device", list_values=[device])
    for phone in sorted(set(report.suspect_phones)):
        await taker.take("phone_list_entry", phone, "reported phone number", list_values=[phone])
    victim = report.victim.customer_id
    if victim and report.kind in TRANSFER_FRAUD:
        await taker.take(
            "transfer_hold",
            victim,
            "the victim's outgoing transfers are held for review while the case is open",
            list_values=[victim],
        )
        add_event(session, "transfers.hold_requested", {"case_id": case.id, "customer_id": victim})
    if report.kind in CARD_KINDS and report.victim.card_id:
        await _block_card(taker, session, report.victim.card_id)
    if victim and report.kind == "account_takeover":
        await _revoke_recent_reissues(taker, session, victim, policy)


async def _block_card(taker: ActionTaker, session: AsyncSession, card_id: str) -> None:
    """``card_id`` is the card's token from a payment response (or the card fingerprint the
    fraud engine knows it by); payments are scored by fingerprint, so that is listed."""
    fingerprint = await session.scalar(
        select(VaultCard.fingerprint).where(VaultCard.token == card_id)
    )
    values = sorted({card_id, fingerprint} - {None}) if fingerprint else [card_id]
    action = await taker.take(
        "card_block",
        card_id,
        "card reported stolen or used by someone else: payments with it are refused",
        detail={"token_known": fingerprint is not None},
        list_values=[str(v) for v in values],
    )
    add_event(
        session,
        "card.blocked",
        {"case_id": taker.case.id, "action_id": action.id, "card_id": card_id},
    )


async def _revoke_recent_reissues(
    taker: ActionTaker, session: AsyncSession, customer_id: str, policy: ActionPolicy
) -> None:
    since = taker.now - policy.reissue_window
    certificates = await session.scalars(
        select(Certificate)
        .where(
            Certificate.customer_id == customer_id,
            Certificate.status == "active",
            Certificate.reissued_at >= since,
        )
        .with_for_update()
    )
    for certificate in certificates:
        await CertificateService.revoke_in(session, certificate, taker.now)
        await taker.take(
            "certificate_revocation",
            certificate.id,
            "reissued shortly before an account-takeover report",
            detail={
                "reissued_at": certificate.reissued_at.isoformat()
                if certificate.reissued_at
                else None
            },
        )
